// Blog: posts with tags, searchable by title.
export interface Post {
  id: string;
  title: string;
  excerpt?: string;
  body: string;
  published: boolean;
  tags: string[];
  publishedAt?: Date;
}

export interface Author {
  id: string;
  name: string;
  email: string;
}

export const schema = {
  models: {
    Post: { tableName: 'posts', primaryKey: 'id', searchable: ['title'] },
    Author: { tableName: 'authors', primaryKey: 'id' },
  },
  config: { auditLog: true, softDeletes: true, defaultPageSize: 10 },
};

export default schema;
