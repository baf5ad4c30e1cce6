// The body media types validation knows (shared by the compiler and the request-time validator).
export const JSON_TYPE = 'application/json';
export const FORM_TYPE = 'application/x-www-form-urlencoded';
