// A redirect the pipeline answers instead of forwarding (login, step-up): an outcome of admission, returned by
// the step that decides it (never thrown); the handler writes a 302 with its cookies.
export class Redirect {
  readonly location: string;
  readonly cookies: readonly string[];
  readonly reason: 'login' | 'step_up';

  constructor(location: string, cookies: readonly string[], reason: 'login' | 'step_up') {
    this.location = location;
    this.cookies = cookies;
    this.reason = reason;
  }
}
