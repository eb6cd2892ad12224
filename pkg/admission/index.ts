/** Admission plumbing shared by the webhook server and the operator's render (webhook configurations). */
export * from './review.js';
export * from './webhook-config.js';
export * from './limits.js';
