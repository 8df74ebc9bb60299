import { plainToInstance } from 'class-transformer';
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
}

const compiled = new WeakMap<PayloadClass, PayloadValidator>();

/**
 * The validator of a contract class, compiled once from its class-validator decorators. It
 * refuses exactly what `plainToInstance` (no implicit conversion) followed by `validateSync`
 * with `whitelist`, `forbidNonWhitelisted` and `forbidUnknownValues` refuses, and returns the
 * same instance, but it runs each decorator's own check directly instead of building a
 * validation error tree for every message. Classes using what it does not compile (nested
 * validation, groups, asynchronous constraints) keep the class-validator path.
 */
export function payloadValidator(type: PayloadClass): PayloadValidator {
  let validator = compiled.get(type);
  if (!validator) {
    validator = compile(type) ?? ((value) => validateWithClassValidator(type, value));
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

function compile(type: PayloadClass): PayloadValidator | undefined {
  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(type, '', false, false, undefined);
  // forbidUnknownValues: a class without a single decorator admits nothing.
  if (metadatas.length === 0) return () => undefined;

  const byProperty = new Map<string, ValidationMetadata[]>();
  for (const metadata of metadatas) {
    if (metadata.groups?.length || metadata.always !== undefined) return undefined;
    const list = byProperty.get(metadata.propertyName) ?? [];
    list.push(metadata);
    byProperty.set(metadata.propertyName, list);
  }

  const properties: PropertyChecks[] = [];
  for (const [name, list] of byProperty) {
    const conditions: Array<(object: object, value: unknown) => boolean> = [];
    const defined: ConstraintCheck[] = [];
    const checks: ConstraintCheck[] = [];
    for (const metadata of list) {
      switch (metadata.type) {
        case ValidationTypes.WHITELIST:
          break;
        case ValidationTypes.CONDITIONAL_VALIDATION:
          conditions.push(metadata.constraints[0] as (object: object, value: unknown) => boolean);
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
          // Nested and promise validation need class-transformer's type information.
          return undefined;
      }
    }
    properties.push({ name, conditions, defined, checks });
  }
  const known = new Set(properties.map((property) => property.name));
  const targetName = type.name;

  return (value) => {
    if (!isPlainRecord(value)) return undefined;
    for (const key of Object.keys(value)) if (!known.has(key)) return undefined;
    const instance = new type() as Record<string, unknown>;
    for (const key of Object.keys(value)) instance[key] = value[key];
    // Default values of the class count as the instance's own properties, as they do for the
    // reference path; none may be unknown.
    for (const key of Object.keys(instance)) if (!known.has(key)) return undefined;

    for (const property of properties) {
      const current = instance[property.name];
      if (!property.conditions.every((condition) => condition(instance, current))) continue;
      for (const check of property.defined) {
        if (!passes(check, instance, current, targetName)) return undefined;
      }
      for (const check of property.checks) {
        if (!passes(check, instance, current, targetName)) return undefined;
      }
    }
    return instance;
  };
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

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
