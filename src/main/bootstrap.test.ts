import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminBanner } from './bootstrap.js';

describe('adminBanner', () => {
  const logins = (banner: string) => banner.split('\n').filter((l) => /^\s+(podman|skopeo) login /.test(l)).map((l) => l.trim());

  it('shows a generated password once, with the file that keeps it and login commands that work on plain HTTP', () => {
    const banner = adminBanner('http://localhost:5000', { username: 'admin', password: 'pw-123', passwordFile: '/srv/wharf/initial-admin-password' }, { verifiedTls: false });
    assert.match(banner, /Password: +pw-123\n/);
    assert.match(banner, /\n {2}\/srv\/wharf\/initial-admin-password\n/);
    assert.deepEqual(logins(banner), ['podman login --tls-verify=false localhost:5000 --username admin', 'skopeo login --tls-verify=false localhost:5000 --username admin']);
    assert.match(banner, /user passwd admin --password-stdin/);
  });

  it('on later starts names the file, not the password; over verified HTTPS the logins need no flag', () => {
    const banner = adminBanner('https://registry.example.com', { username: 'root', passwordFile: '/srv/wharf/initial-admin-password' }, { verifiedTls: true });
    assert.doesNotMatch(banner, /Password:/);
    assert.match(banner, /The superuser root still has the password generated on the first start/);
    assert.match(banner, /\/srv\/wharf\/initial-admin-password/);
    assert.deepEqual(logins(banner), ['podman login registry.example.com --username root', 'skopeo login registry.example.com --username root']);
  });
});
