// ratelimit/: the folder's only entry for the rest of src/.
export * from './limits.ts';
