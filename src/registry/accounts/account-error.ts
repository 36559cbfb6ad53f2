/**
 * The error account services throw for bad input, missing accounts and conflicts. `/api/v1` renders it
 * as `{status, error_type, detail}`; `type` uses Quay's vocabulary where Quay has a word for it.
 */
export const ACCOUNT_ERROR_TYPES = {
  invalid_request: 400,
  not_found: 404,
  conflict: 409,
} as const;

export type AccountErrorType = keyof typeof ACCOUNT_ERROR_TYPES;

export class AccountError extends Error {
  readonly status: number;

  constructor(
    readonly type: AccountErrorType,
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
    this.status = ACCOUNT_ERROR_TYPES[type];
  }
}

export function isAccountError(err: unknown): err is AccountError {
  return err instanceof AccountError;
}
