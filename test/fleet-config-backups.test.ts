// fleet.yaml `backups: { registry: { schedule, retention } }`: the registry database's own backup schedule.
import { describe, expect, it } from 'vitest';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';

const check = (yaml: string) => {
  const r = checkFleetConfig(`branch: main\n${yaml}`);
  return { config: r.config, issues: r.issues.map(formatIssue) };
};

describe('fleet.yaml backups', () => {
  it('accepts a registry schedule and keeps it', () => {
    const r = check('backups:\n  registry: { schedule: "0 2 * * *", retention: 14 }\n');
    expect(r.issues).toEqual([]);
    expect(r.config!.backups).toEqual({ registry: { schedule: '0 2 * * *', retention: 14 } });
  });

  it('is optional', () => {
    expect(check('').config!.backups).toBeUndefined();
  });

  it.each([
    ['an unknown key', 'backups:\n  projects: {}\n', /fleet\.yaml:3:3: \/backups\/projects: unknown key "projects"/],
    ['an unknown key in registry', 'backups:\n  registry: { schedule: "0 2 * * *", retention: 3, keep: 1 }\n', /\/backups\/registry\/keep: unknown key "keep"/],
    ['no retention', 'backups:\n  registry: { schedule: "0 2 * * *" }\n', /\/backups\/registry: missing required key "retention"/],
    ['a retention of 0', 'backups:\n  registry: { schedule: "0 2 * * *", retention: 0 }\n', /\/backups\/registry\/retention: must be >= 1/],
    ['not cron', 'backups:\n  registry: { schedule: "daily", retention: 3 }\n', /\/backups\/registry\/schedule: must be a cron expression with 5 or 6 fields/],
    ['cron node-cron cannot run', 'backups:\n  registry: { schedule: "99 2 * * *", retention: 3 }\n', /fleet\.yaml:3:\d+: \/backups\/registry\/schedule: is not a cron schedule the daemon can run/],
  ])('refuses %s, naming the file, line and path', (_name, yaml, message) => {
    const r = check(yaml);
    expect(r.config).toBeNull();
    expect(r.issues.join('\n')).toMatch(message);
  });
});
