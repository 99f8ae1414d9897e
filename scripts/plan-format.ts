// Render a plan for people: plain text (one line per changed project) and markdown for a pull request comment.
import type { Action, InvalidProject } from '../daemon/core/types.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';

/**
 * One symbol per project line: `+` create or start, `~` update, schema update or provision (role and database), `∓` restart (the instance is
 * replaced or started again after a crash), `-` stop, `!` delete, `…` wait (backoff: nothing changes this pass), `‖`
 * suspended by an operator (left as it is), `↺` restore of the database from a backup (an operator's request),
 * `⇄` a database move, `✗` a database move refused (on its own line: nothing of it happens).
 * When a project has several actions the most consequential one picks the symbol.
 */
const SYMBOL: Record<Exclude<Action['kind'], 'noop'>, string> = {
  create: '+', provision: '~', start: '+', update: '~', schema_update: '~', restart: '∓', stop: '-', delete: '!', wait: '…', suspended: '‖', restore: '↺',
  move_database: '⇄', drop_old_database: '!',
};
// A restart next to an update keeps `~` (the update is its cause; its reason is on the line): `∓` marks a restart
// alone (a crash, a secret rotation).
const WEIGHT: Record<string, number> = { '!': 4, '⇄': 3.7, '↺': 3.5, '-': 3, '+': 2, '~': 1, '∓': 0, '…': -1, '‖': -2, '✗': -3 };

export interface ProjectLine {
  id: string;
  symbol: string;
  reasons: string[];
  /** A delete that drops the database, or a schema going back to older content. */
  needsCare: boolean;
}

/** Group the changing actions by project (noops left out), in plan order. */
export function projectLines(actions: Action[]): ProjectLine[] {
  const lines = new Map<string, ProjectLine>();
  for (const action of actions) {
    if (action.kind === 'noop') continue;
    // A refused move changes nothing: its own line, so it never reads as part of what the pass does.
    const refused = action.kind === 'move_database' && !!action.refused;
    const key = refused ? `${action.id}\0refused` : action.id;
    const line = lines.get(key) ?? { id: action.id, symbol: '~', reasons: [], needsCare: false };
    const symbol = refused ? '✗' : SYMBOL[action.kind];
    if (!line.reasons.length || WEIGHT[symbol] > WEIGHT[line.symbol]) line.symbol = symbol;
    line.reasons.push(action.reason);
    // A restore replaces the database's content: bold in a pull request comment, like a dropped database.
    // A database move and the drop of the copy it left: bold like a dropped database.
    if ((action.kind === 'delete' && action.dropDatabase) || (action.kind === 'schema_update' && action.revert) || (action.kind === 'restore' && !action.refused)
      || (action.kind === 'move_database' && !action.refused) || action.kind === 'drop_old_database') {
      line.needsCare = true;
    }
    lines.set(key, line);
  }
  return [...lines.values()];
}

export function summary(actions: Action[]): string {
  const count = (kinds: Action['kind'][], refused = false) =>
    new Set(actions.filter((a) => kinds.includes(a.kind) && (a.kind === 'move_database' && !!a.refused) === refused).map((a) => a.id)).size;
  const moves = count(['move_database']);
  const refusedMoves = count(['move_database'], true);
  return `Plan: ${count(['create'])} to create, ${count(['start'])} to start, ` +
    `${count(['update', 'schema_update', 'provision'])} to update, ${count(['stop'])} to stop, ${count(['delete'])} to delete` +
    (count(['restart']) ? `, ${count(['restart'])} to restart` : '') +
    (moves ? `, ${moves} database${moves === 1 ? '' : 's'} to move` : '') +
    (refusedMoves ? `, ${refusedMoves} database move${refusedMoves === 1 ? '' : 's'} refused` : '') +
    (count(['drop_old_database']) ? `, ${count(['drop_old_database'])} old database cop${count(['drop_old_database']) === 1 ? 'y' : 'ies'} to drop` : '') +
    (count(['suspended']) ? `, ${count(['suspended'])} suspended (left as it is).` : '.');
}

/** `+ blog  new project at blog.localhost`, one line per changed project; "No changes." when none. */
export function formatPlanText(actions: Action[]): string {
  const lines = projectLines(actions);
  if (!lines.length) return 'No changes.';
  const width = Math.max(...lines.map((l) => l.id.length));
  return lines.map((l) => `${l.symbol} ${l.id.padEnd(width)}  ${l.reasons.join('; ')}`).join('\n');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A markdown table for a pull request comment; changes that need care are in bold. */
export function formatPlanMarkdown(
  actions: Action[],
  opts: { title?: string; invalid?: InvalidProject[] } = {},
): string {
  const out = [`### ${opts.title ?? 'Fleet plan'}`, ''];
  const lines = projectLines(actions);
  if (!lines.length) {
    out.push('No changes.');
  } else {
    out.push('| | Project | Change |', '|:-:|---|---|');
    for (const l of lines) {
      const reasons = cell(l.reasons.join('; '));
      const change = l.needsCare ? `**${reasons} (needs care)**` : reasons;
      out.push(`| \`${l.symbol}\` | ${cell(l.id)} | ${change} |`);
    }
    out.push('', summary(actions));
  }
  if (opts.invalid?.length) {
    out.push('', '**Invalid manifests**: these projects keep what was last applied until fixed.', '');
    for (const p of opts.invalid) {
      for (const issue of p.errors) out.push(`- ${cell(formatIssue(issue))}`);
    }
  }
  return out.join('\n');
}
