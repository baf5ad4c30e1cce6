// routing/: the compiled router (host index + path trie) and route path templates.
export type { HostMatcher, RoutableRoute } from './route.ts';
export { createRouter, type Router } from './router.ts';
export { findShadowed } from './shadow.ts';
export { extractParams, matchTemplate, parseTemplate } from './template.ts';
export type { PathTemplate } from './template.ts';
export { compileRouteMatch } from './route.ts';
export { createSpellingGuard, type PathSpelling, type SpelledRoute, type SpellingGuard } from './spelling.ts';
export { findCaseShadowed, spellingConflicts } from './spelling-check.ts';
export { compileNamedHosts } from './named-hosts.ts';
