/**
 * The order flow as a typical unsecured NestJS set-up builds it, for `bench:flow --shape
 * baseline` to measure beside Portcullis on the same machine: Express, TypeORM repositories,
 * `@nestjs/microservices` over plain NATS, a ValidationPipe, and nothing else. No
 * authentication, no authorization, no signed messages, no outbox or inbox, no audit, no
 * field encryption, no TLS. It is a yardstick, not a pattern: do not deploy it.
 *
 *   node dist-bench/bench/baseline/main.js orders|billing
 *
 * Settings: PORT, DATABASE_URL, NATS_URL.
 */
import 'reflect-metadata';

import {
  Body,
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Post,
  Query,
  UnprocessableEntityException,
  ValidationPipe,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxy,
  ClientsModule,
  EventPattern,
  type MicroserviceOptions,
  Payload,
  Transport,
} from '@nestjs/microservices';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsString,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import {
  Column,
  CreateDateColumn,
  Entity,
  In,
  type MigrationInterface,
  ManyToOne,
  OneToMany,
  PrimaryColumn,
  PrimaryGeneratedColumn,
  type QueryRunner,
  type Repository,
} from 'typeorm';

@Entity('baseline_products')
class Product {
  @PrimaryColumn() sku!: string;
  @Column() name!: string;
  @Column({ name: 'unit_price_cents', type: 'integer' }) unitPriceCents!: number;
}

@Entity('baseline_orders')
class Order {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column() status!: string;
  @Column({ name: 'total_cents', type: 'bigint' }) totalCents!: string;
  @OneToMany(() => OrderLine, (line) => line.order, { cascade: true, eager: true })
  lines!: OrderLine[];
  @CreateDateColumn({ name: 'created_at' }) createdAt!: Date;
}

@Entity('baseline_order_lines')
class OrderLine {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @ManyToOne(() => Order, (order) => order.lines, { onDelete: 'CASCADE' }) order!: Order;
  @Column() sku!: string;
  @Column({ type: 'integer' }) quantity!: number;
  @Column({ name: 'unit_price_cents', type: 'integer' }) unitPriceCents!: number;
}

@Entity('baseline_invoices')
class Invoice {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ name: 'order_id', type: 'uuid' }) orderId!: string;
  @Column({ name: 'amount_cents', type: 'bigint' }) amountCents!: string;
  @Column() status!: string;
  @CreateDateColumn({ name: 'created_at' }) createdAt!: Date;
}

class CreateBaselineTables1700000000000 implements MigrationInterface {
  name = 'CreateBaselineTables1700000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`CREATE TABLE baseline_products (sku text PRIMARY KEY, name text NOT NULL,
      unit_price_cents integer NOT NULL)`);
    await db.query(`CREATE TABLE baseline_orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      status text NOT NULL, total_cents bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    await db.query(`CREATE TABLE baseline_order_lines (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      "orderId" uuid REFERENCES baseline_orders (id) ON DELETE CASCADE,
      sku text NOT NULL, quantity integer NOT NULL, unit_price_cents integer NOT NULL)`);
    await db.query(`CREATE TABLE baseline_invoices (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      order_id uuid NOT NULL, amount_cents bigint NOT NULL, status text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`);
    await db.query(`CREATE INDEX ON baseline_invoices (order_id)`);
    await db.query(`INSERT INTO baseline_products VALUES ('KEY-001', 'Brass padlock', 1299),
      ('KEY-002', 'Hardened steel chain, 1 m', 2450), ('KEY-003', 'Key cabinet, 20 hooks', 4999),
      ('GATE-001', 'Portcullis winch', 89900), ('GATE-002', 'Iron gate hinge (pair)', 3575),
      ('LOCK-001', 'Smart deadbolt', 14900)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(
      'DROP TABLE baseline_invoices, baseline_order_lines, baseline_orders, baseline_products',
    );
  }
}

class OrderItemDto {
  @IsString() sku!: string;
  @IsInt() @Min(1) @Max(1000) quantity!: number;
}

class CreateOrderDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  @Type(() => OrderItemDto)
  items!: OrderItemDto[];
}

const BUS = 'BUS';

@Injectable()
class OrdersService {
  constructor(
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    @InjectRepository(Product) private readonly products: Repository<Product>,
    @Inject(BUS) private readonly bus: ClientProxy,
  ) {}

  catalogue(): Promise<Product[]> {
    return this.products.find();
  }

  async create(dto: CreateOrderDto): Promise<Order> {
    const products = await this.products.findBy({ sku: In(dto.items.map((item) => item.sku)) });
    const bySku = new Map(products.map((product) => [product.sku, product]));
    let total = 0;
    const lines = dto.items.map((item) => {
      const product = bySku.get(item.sku);
      if (!product) throw new UnprocessableEntityException(`unknown sku ${item.sku}`);
      total += product.unitPriceCents * item.quantity;
      return Object.assign(new OrderLine(), {
        sku: item.sku,
        quantity: item.quantity,
        unitPriceCents: product.unitPriceCents,
      });
    });
    const order = await this.orders.save(
      Object.assign(new Order(), { status: 'pending', totalCents: String(total), lines }),
    );
    this.bus.emit('orders.created', { orderId: order.id, totalCents: total });
    return order;
  }
}

@Controller()
class OrdersController {
  constructor(private readonly service: OrdersService) {}

  @Get('products')
  products(): Promise<Product[]> {
    return this.service.catalogue();
  }

  @Post('orders')
  create(@Body() dto: CreateOrderDto): Promise<Order> {
    return this.service.create(dto);
  }

  @Get('health')
  health(): { status: string } {
    return { status: 'ok' };
  }
}

@Controller()
class BillingController {
  constructor(@InjectRepository(Invoice) private readonly invoices: Repository<Invoice>) {}

  @EventPattern('orders.created')
  async onOrderCreated(@Payload() event: { orderId: string; totalCents: number }): Promise<void> {
    await this.invoices.save(
      Object.assign(new Invoice(), {
        orderId: event.orderId,
        amountCents: String(event.totalCents),
        status: 'open',
      }),
    );
  }

  @Get('billing/invoices')
  list(@Query('orderId') orderId: string): Promise<Invoice[]> {
    return this.invoices.findBy({ orderId });
  }

  @Get('health')
  health(): { status: string } {
    return { status: 'ok' };
  }
}

const database = (migrate: boolean) =>
  TypeOrmModule.forRoot({
    type: 'postgres',
    url: process.env.DATABASE_URL,
    entities: [Product, Order, OrderLine, Invoice],
    migrations: migrate ? [CreateBaselineTables1700000000000] : [],
    migrationsRun: migrate,
  });

@Module({
  imports: [
    database(true),
    TypeOrmModule.forFeature([Order, Product]),
    ClientsModule.register([
      { name: BUS, transport: Transport.NATS, options: { servers: [process.env.NATS_URL ?? ''] } },
    ]),
  ],
  controllers: [OrdersController],
  providers: [OrdersService],
})
class OrdersModule {}

@Module({
  imports: [database(false), TypeOrmModule.forFeature([Invoice])],
  controllers: [BillingController],
})
class BillingModule {}

async function main(): Promise<void> {
  const role = process.argv[2];
  if (role !== 'orders' && role !== 'billing') throw new Error('usage: main.js orders|billing');
  const app = await NestFactory.create(role === 'orders' ? OrdersModule : BillingModule, {
    logger: ['error', 'warn'],
  });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, transform: true }));
  if (role === 'billing') {
    app.connectMicroservice<MicroserviceOptions>({
      transport: Transport.NATS,
      options: { servers: [process.env.NATS_URL ?? ''], queue: 'baseline-billing' },
    });
    await app.startAllMicroservices();
  }
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
}

void main();
