// headerOf / headerObjectOf read the context's raw header lines the way node:http's req.headers would: the
// stages that moved off the request object must not start reading a different value than before.
import { describe, expect, it } from 'vitest';
import { headerObjectOf, headerOf } from '../../src/core/index.ts';

const ctx = (...rawHeaders: string[]) => ({ rawHeaders });

describe('headerOf', () => {
  it('matches names case-insensitively and answers undefined when absent', () => {
    const c = ctx('Content-Type', 'text/html', 'X-Requested-With', 'fetch');
    expect(headerOf(c, 'content-type')).toBe('text/html');
    expect(headerOf(c, 'x-requested-with')).toBe('fetch');
    expect(headerOf(c, 'accept')).toBeUndefined();
  });

  it('joins repeated lines with ", " except where node:http keeps the first (user-agent, content-type, …)', () => {
    const c = ctx('Accept', 'text/html', 'accept', 'application/json', 'User-Agent', 'first', 'user-agent', 'second', 'Origin', 'https://a.example', 'origin', 'https://b.example');
    expect(headerOf(c, 'accept')).toBe('text/html, application/json');
    expect(headerOf(c, 'user-agent')).toBe('first');
    // Two Origin lines never pass as one allowed origin: the joined value matches none.
    expect(headerOf(c, 'origin')).toBe('https://a.example, https://b.example');
  });

  it('does not take a longer or shorter name for the one asked', () => {
    expect(headerOf(ctx('Originx', 'a', 'Origi', 'b'), 'origin')).toBeUndefined();
  });
});

describe('headerObjectOf', () => {
  it('gives lower-case names, cookies joined with "; ", first-wins headers kept first', () => {
    const c = ctx('Cookie', 'a=1', 'cookie', 'b=2', 'Content-Type', 'application/json', 'content-type', 'text/plain', 'X-Tenant', 'acme', 'x-tenant', 'globex');
    expect(headerObjectOf(c)).toEqual({ cookie: 'a=1; b=2', 'content-type': 'application/json', 'x-tenant': 'acme, globex' });
  });
});
