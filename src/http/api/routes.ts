/** Every `/api/v1` route, in the order the OpenAPI document lists them. */
import type { ApiRoute } from './route.js';
import { userRoutes } from './user.js';

export const API_ROUTES: readonly ApiRoute[] = [...userRoutes];
