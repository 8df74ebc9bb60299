import { TransformationType, plainToInstance } from 'class-transformer';
import { defaultMetadataStorage as transformerStorage } from 'class-transformer/cjs/storage';
import {
  type ValidationArguments,
  ValidationTypes,
  getMetadataStorage,
  validateSync,
} from 'class-validator';

type PayloadClass = new () => object;
type ValidationMetadata = ReturnType<
  ReturnType<typeof getMetadataStorage>['getTargetValidationMetadatas']
>[number];

/** Validates a plain value against a contract class: the typed instance, or undefined. */
export type PayloadValidator = (value: unknown) => object | undefined;

interface ConstraintCheck {
  readonly property: string;
  readonly constraints: unknown[];
  readonly each: boolean;
  readonly validateIf?: (object: object, value: unknown) => boolean;
  readonly validate: (value: unknown, args: ValidationArguments) => unknown;
}

interface PropertyChecks {
  readonly name: string;
  readonly conditions: ReadonlyArray<(object: object, value: unknown) => boolean>;
  /** `@IsDefined` checks, which class-validator runs before the others. */
  readonly defined: readonly ConstraintCheck[];
  readonly checks: readonly ConstraintCheck[];
  /** Whether `@ValidateNested` applies: the value's objects are checked as their own class. */
  readonly nested: boolean;
}

/** One contract class, compiled: its properties' checks and the classes `@Type` names. */
interface ClassPlan {
  readonly type: PayloadClass;
  readonly known: ReadonlySet<string>;
  readonly properties: PropertyChecks[];
  /** Properties whose objects class-transformer turns into instances of another contract class. */
  readonly typed: Map<string, ClassPlan>;
}

/** Constructors class-transformer converts to rather than fills with properties. */
const CONVERTED_TYPES: ReadonlySet<unknown> = new Set([
  Object,
  Array,
  String,
  Number,
  Boolean,
  Date,
  Map,
  Set,
  Promise,
  Buffer,
]);

/** Tells a refused value apart from a transformed one while an instance is being built. */
const REFUSED = Symbol('refused');

const compiled = new WeakMap<PayloadClass, PayloadValidator>();

/**
 * The validator of a contract class, compiled once from its class-validator decorators and
 * the `@Type` decorators of its nested classes. It refuses what `plainToInstance` (no
 * implicit conversion) followed by `validateSync` with `whitelist`, `forbidNonWhitelisted` and
 * `forbidUnknownValues` refuses, and returns an equal instance, but it runs each decorator's
 * own check directly instead of building a validation error tree for every message. It is
 * stricter in two respects: an object with a key class-transformer silently drops (`__proto__`,
 * or a name its target inherits, such as `constructor` or `toString`) is refused, and so is an
 * object JSON cannot make (a class instance) where `@Type` expects one. Classes using
 * what it does not compile (validation groups, asynchronous constraints, `@Expose`,
 * `@Exclude`, `@Transform`, discriminators, `@Type` of a built-in) keep the class-validator path.
 */
export function payloadValidator(type: PayloadClass): PayloadValidator {
  let validator = compiled.get(type);
  if (!validator) {
    const plan = compilePlan(type, new Map());
    validator = plan
      ? (value) => validateWithPlan(plan, value)
      : (value) => validateWithClassValidator(type, value);
    compiled.set(type, validator);
  }
  return validator;
}

/** The reference path: class-transformer, then class-validator, as HTTP bodies are checked. */
export function validateWithClassValidator(type: PayloadClass, value: unknown): object | undefined {
  if (!isPlainRecord(value)) return undefined;
  const instance = plainToInstance(type, value, { enableImplicitConversion: false });
  const errors = validateSync(instance, {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
  });
  return errors.length === 0 ? instance : undefined;
}

function compilePlan(
  type: PayloadClass,
  plans: Map<PayloadClass, ClassPlan>,
): ClassPlan | undefined {
  const existing = plans.get(type);
  if (existing) return existing;
  if (!transformsPlainly(type)) return undefined;

  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(type, '', false, false, undefined);
  const byProperty = new Map<string, ValidationMetadata[]>();
  for (const metadata of metadatas) {
    if (metadata.groups?.length || metadata.always !== undefined) return undefined;
    const list = byProperty.get(metadata.propertyName) ?? [];
    list.push(metadata);
    byProperty.set(metadata.propertyName, list);
  }

  const properties: PropertyChecks[] = [];
  const typed = new Map<string, ClassPlan>();
  const plan: ClassPlan = { type, known: new Set(byProperty.keys()), properties, typed };
  plans.set(type, plan);

  for (const [name, list] of byProperty) {
    const conditions: Array<(object: object, value: unknown) => boolean> = [];
    const defined: ConstraintCheck[] = [];
    const checks: ConstraintCheck[] = [];
    let nested = false;
    for (const metadata of list) {
      switch (metadata.type) {
        case ValidationTypes.WHITELIST:
          break;
        case ValidationTypes.CONDITIONAL_VALIDATION:
          conditions.push(metadata.constraints[0] as (object: object, value: unknown) => boolean);
          break;
        case ValidationTypes.NESTED_VALIDATION:
          nested = true;
          break;
        case ValidationTypes.IS_DEFINED:
        case ValidationTypes.CUSTOM_VALIDATION: {
          const target = metadata.type === ValidationTypes.IS_DEFINED ? defined : checks;
          for (const constraint of storage.getTargetValidatorConstraints(metadata.constraintCls)) {
            if (constraint.async) return undefined;
            const instance = constraint.instance as {
              validate: (value: unknown, args: ValidationArguments) => unknown;
            };
            target.push({
              property: name,
              constraints: (metadata.constraints ?? []) as unknown[],
              each: metadata.each === true,
              validateIf: metadata.validateIf,
              validate: instance.validate.bind(instance),
            });
          }
          break;
        }
        default:
          // Promise validation, among others.
          return undefined;
      }
    }

    const typeMetadata = transformerStorage.findTypeMetadata(type, name);
    if (typeMetadata) {
      if (typeMetadata.options?.discriminator) return undefined;
      const nestedType = typeMetadata.typeFunction() as unknown;
      if (typeof nestedType !== 'function' || CONVERTED_TYPES.has(nestedType)) return undefined;
      const nestedPlan = compilePlan(nestedType as PayloadClass, plans);
      if (!nestedPlan) return undefined;
      typed.set(name, nestedPlan);
    } else if (nested) {
      // Without `@Type` the objects stay plain, and class-validator finds no rules for them.
      return undefined;
    }
    properties.push({ name, conditions, defined, checks, nested });
  }
  return plan;
}

/** Whether class-transformer fills the class with the value's own keys and nothing else. */
function transformsPlainly(type: PayloadClass): boolean {
  if (transformerStorage.getStrategy(type) !== 'none') return false;
  if (transformerStorage.getExposedMetadatas(type).length > 0) return false;
  if (transformerStorage.getExcludedMetadatas(type).length > 0) return false;
  const names = getMetadataStorage()
    .getTargetValidationMetadatas(type, '', false, false, undefined)
    .map((metadata) => metadata.propertyName);
  return names.every(
    (name) =>
      transformerStorage.findTransformMetadatas(type, name, TransformationType.PLAIN_TO_CLASS)
        .length === 0,
  );
}

function validateWithPlan(plan: ClassPlan, value: unknown): object | undefined {
  if (!isPlainRecord(value)) return undefined;
  // The top level's unknown keys are refused before anything is copied.
  for (const key of Object.keys(value)) if (!plan.known.has(key)) return undefined;
  const instance = toInstance(plan, value);
  if (instance === REFUSED || !isValid(plan, instance)) return undefined;
  return instance;
}

/**
 * The instance `plainToInstance` makes of a plain object: a new instance of the class with the
 * object's keys, the values of `@Type` properties turned into instances in turn. Other values
 * are kept as they are (class-transformer copies them; they are equal).
 */
function toInstance(plan: ClassPlan, value: Record<string, unknown>): object | typeof REFUSED {
  const instance = new plan.type() as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    if (dropsKey(instance, key)) return REFUSED;
    const field = value[key];
    const nested = plan.typed.get(key);
    const copy = nested ? transformAs(nested, field) : checkedPlain(field);
    if (copy === REFUSED) return REFUSED;
    instance[key] = copy;
  }
  return instance;
}

/** A `@Type` property's value as class-transformer turns it: objects into instances. */
function transformAs(plan: ClassPlan, value: unknown): unknown {
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (const item of value) {
      const copy = transformAs(plan, item);
      if (copy === REFUSED) return REFUSED;
      items.push(copy);
    }
    return items;
  }
  if (typeof value === 'object' && value !== null) {
    return isJsonObject(value) ? toInstance(plan, value) : REFUSED;
  }
  return value;
}

/** A value without a type, kept as it is unless it holds a key class-transformer would drop. */
function checkedPlain(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (const item of value) if (checkedPlain(item) === REFUSED) return REFUSED;
    return value;
  }
  if (!isPlainRecord(value)) return value;
  for (const key of Object.keys(value)) {
    if (dropsKey(PLAIN, key) || checkedPlain(value[key]) === REFUSED) return REFUSED;
  }
  return value;
}

const PLAIN: object = {};

/**
 * Keys class-transformer skips when it fills `target`: `__proto__`, and names the target
 * inherits (`constructor`, the methods of `Object.prototype`, a class's methods and getters).
 */
function dropsKey(target: object, key: string): boolean {
  return key === '__proto__' || (key in target && !Object.hasOwn(target, key));
}

/** class-validator's verdict on an instance, without its error tree. */
function isValid(plan: ClassPlan, object: object): boolean {
  // forbidUnknownValues: a class without a single decorator admits nothing.
  if (plan.properties.length === 0) return false;
  const instance = object as Record<string, unknown>;
  // Default values of the class count as the instance's own properties; none may be unknown.
  for (const key of Object.keys(instance)) if (!plan.known.has(key)) return false;

  const targetName = plan.type.name;
  for (const property of plan.properties) {
    const current = instance[property.name];
    if (!property.conditions.every((condition) => condition(instance, current))) continue;
    for (const check of property.defined) {
      if (!passes(check, instance, current, targetName)) return false;
    }
    for (const check of property.checks) {
      if (!passes(check, instance, current, targetName)) return false;
    }
    if (property.nested && !nestedValid(plan.typed.get(property.name), current)) return false;
  }
  return true;
}

/**
 * `@ValidateNested`: nothing to check when undefined; each element of an array (arrays within
 * it included); an object as its own class; anything else refused.
 */
function nestedValid(plan: ClassPlan | undefined, value: unknown): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.every((item) => nestedValid(plan, item));
  if (typeof value !== 'object' || value === null || plan === undefined) return false;
  return value instanceof plan.type && isValid(plan, value);
}

function passes(
  check: ConstraintCheck,
  object: object,
  value: unknown,
  targetName: string,
): boolean {
  if (check.validateIf && !check.validateIf(object, value)) return true;
  const args: ValidationArguments = {
    targetName,
    property: check.property,
    object,
    value,
    constraints: check.constraints,
  };
  if (!check.each || !(Array.isArray(value) || value instanceof Set || value instanceof Map)) {
    return Boolean(check.validate(value, args));
  }
  const items: unknown[] = value instanceof Map ? [...value.values()] : [...value];
  return items.every((item) => Boolean(check.validate(item, args)));
}

/** An object as JSON makes it: neither an array nor an instance of anything but `Object`. */
function isJsonObject(value: object): value is Record<string, unknown> {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
