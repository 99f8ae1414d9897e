// Shop: a product catalogue and orders.
export interface Product {
  id: string;
  name: string;
  priceCents: number;
  inStock: boolean;
}

export interface Order {
  id: string;
  productId: string;
  quantity: number;
  createdAt: Date;
}

export const schema = {
  models: {
    Product: { tableName: 'products', primaryKey: 'id', searchable: ['name'] },
    Order: { tableName: 'orders', primaryKey: 'id' },
  },
  config: { auditLog: true, defaultPageSize: 20 },
};

export default schema;
