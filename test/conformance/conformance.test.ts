/**
 * OCI distribution-spec conformance (all four workflows) against a real `wharf serve` process with
 * authentication on, twice: with the superuser's credentials, and with a robot account that has write
 * access to its two repositories only. The suite itself lives in ./conformance.ts; its client follows
 * the Bearer challenge to /v2/auth with the credentials, as `docker` does.
 */
import { after, before, describe } from 'node:test';
import { createRobot } from '../helpers/wharf-accounts.js';
import { startWharf, type WharfProcess } from '../helpers/wharf-process.js';
import { runConformance } from './conformance.js';

let wharf: WharfProcess | undefined;
let robot: { username: string; password: string } | undefined;

before(async () => {
  wharf = await startWharf();
  robot = await createRobot(wharf, 'conformance+ci', ['conformance/robot-app', 'conformance/robot-other'], 'write');
});

after(async () => {
  await wharf?.stop();
});

function running(): WharfProcess {
  if (!wharf) throw new Error('wharf is not running (startup failed?)');
  return wharf;
}

// Wharf mounts a blob without `from` when the caller can already read it elsewhere.
const options = { automaticCrossmount: true };

describe("with the superuser's credentials", () => runConformance(
  {
    // resolved lazily: the process is only started by the before() hook
    get url(): string {
      return running().url;
    },
    get username(): string {
      return running().admin.username;
    },
    get password(): string {
      return running().admin.password;
    },
    // `fresh` does not exist beforehand: the superuser's first push creates it, as on a new registry.
    namespace: 'fresh/app',
    crossmountNamespace: 'fresh/other',
  },
  options,
));

describe('with a robot account that has write access to its repositories', () => runConformance(
  {
    get url(): string {
      return running().url;
    },
    get username(): string {
      if (!robot) throw new Error('the robot was not created');
      return robot.username;
    },
    get password(): string {
      if (!robot) throw new Error('the robot was not created');
      return robot.password;
    },
    namespace: 'conformance/robot-app',
    crossmountNamespace: 'conformance/robot-other',
  },
  options,
));
