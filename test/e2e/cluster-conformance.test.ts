/**
 * OCI distribution-spec conformance (all four workflows) through haproxy in front of two `wharf serve`
 * processes on one PostgreSQL database and one bucket prefix (test/helpers/cluster.ts): round robin
 * without stickiness, so consecutive requests of one workflow — the token, the upload's POST, PATCHes
 * and PUT, the manifest PUT and the reads back — land on alternate processes.
 */
import { after, before, describe } from 'node:test';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { runConformance } from '../conformance/conformance.js';

let cluster: Cluster | undefined;

before(async () => {
  cluster = await startCluster({ processes: 2 });
});

after(async () => {
  await cluster?.stop();
});

function running(): Cluster {
  if (!cluster) throw new Error('the cluster is not running (startup failed?)');
  return cluster;
}

describe('through haproxy, two processes', () => runConformance(
  {
    get url(): string {
      return running().url;
    },
    get username(): string {
      return running().admin.username;
    },
    get password(): string {
      return running().admin.password;
    },
    namespace: 'conformance/cluster/app',
    crossmountNamespace: 'conformance/cluster/other',
  },
  { automaticCrossmount: true },
));
