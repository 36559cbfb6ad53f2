/** Every `/api/v1` route, in the order the OpenAPI document lists them. */
import type { ApiRoute } from './route.js';
import { apiTokenRoutes } from './api-tokens.js';
import { organizationRoutes } from './organizations.js';
import { orgRobotRoutes, userRobotRoutes } from './robots.js';
import { superuserRoutes } from './superuser-users.js';
import { teamRoutes } from './teams.js';
import { userRoutes } from './user.js';
import { repositoryRoutes } from './repositories.js';
import { permissionRoutes } from './permissions.js';
import { prototypeRoutes } from './prototypes.js';
import { tagRoutes } from './tags.js';
import { logRoutes } from './logs.js';
import { proxyCacheRoutes } from './proxycache.js';
import { autopruneRoutes } from './autoprune.js';
import { quotaRoutes } from './quota.js';
import { entityRoutes } from './entities.js';
import { messageRoutes } from './messages.js';
import { starRoutes } from './stars.js';
import { superuserOrganizationRoutes } from './superuser-organizations.js';
import { signinRoutes } from './signin.js';
import { userInitializeRoutes } from './user-initialize.js';
import { appTokenRoutes } from './app-tokens.js';
import { applicationRoutes } from './applications.js';
import { immutabilityRoutes } from './immutability.js';
import { manifestRoutes } from './manifests.js';
import { manifestLabelRoutes } from './manifest-labels.js';
import { pullStatisticsRoutes } from './pull-statistics.js';
import { registryInfoRoutes } from './registry-info.js';
import { mirrorRoutes } from './mirror.js';
import { orgMirrorRoutes } from './org-mirror.js';
import { replicationRoutes } from './replication.js';

export const API_ROUTES: readonly ApiRoute[] = [...userRoutes, ...organizationRoutes, ...teamRoutes, ...orgRobotRoutes, ...userRobotRoutes, ...apiTokenRoutes, ...superuserRoutes, ...repositoryRoutes, ...permissionRoutes, ...prototypeRoutes, ...tagRoutes, ...logRoutes, ...proxyCacheRoutes, ...autopruneRoutes, ...quotaRoutes, ...entityRoutes, ...superuserOrganizationRoutes, ...starRoutes, ...messageRoutes, ...signinRoutes, ...userInitializeRoutes, ...appTokenRoutes, ...applicationRoutes,
  ...immutabilityRoutes, ...manifestRoutes, ...manifestLabelRoutes, ...pullStatisticsRoutes, ...registryInfoRoutes, ...mirrorRoutes, ...orgMirrorRoutes, ...replicationRoutes];
