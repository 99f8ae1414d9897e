// Each command's one-line summary for `fleet --help`, kept here so help does not load every command module (they
// pull in the registry, drivers and the AWS SDK). test/cli-help.test.ts checks it against each module's `summary`.
export const SUMMARIES: Readonly<Record<string, string>> = {
  validate: 'Validate project manifests, cross-project rules and fleet.yaml in the working tree.',
  plan: 'Show what applying a commit would change, compared to a base commit.',
  new: 'Create projects/<id>/ with a project.yaml and a schema.ts.',
  daemon: 'Run the watcher daemon: follow the tracked branch and converge databases, secrets, instances and the gateway.',
  status: 'Print the fleet: id, state, health, applied commit, drift (desired commit ≠ applied), who suspended it (if anyone), the database server (when not main) and last error.',
  events: 'Print what the fleet did (the registry\'s events), newest last: for every project or one.',
  logs: 'Print a project\'s instance log (its last lines; -f follows it until Ctrl-C).',
  secrets: 'Set a project secret from stdin, or rotate one (DATABASE_URL: a new role password); restarts that project only.',
  backup: 'Back up a project\'s database now (pg_dump custom format, verified), or the registry with --registry.',
  backups: 'List a project\'s backups (time, kind, size, commit), newest first; --registry lists the registry\'s.',
  restore: 'Restore a project\'s database from a backup: the daemon stops the instance, swaps the restored database in and starts it.',
  sync: 'Fetch the tracked branch now; with --wait, wait for that pass and print its outcome (exit 1 when it failed).',
  restart: 'Restart one project: the daemon starts a new instance and retires the old one once the new one is ready.',
  suspend: 'Suspend one project: every pass leaves it exactly as it is (no deploys, restarts or stops) until resumed.',
  resume: 'Resume a suspended project: the next pass converges it on the tracked branch.',
};
