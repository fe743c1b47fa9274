// r1 board: one page over run folders. Plain JavaScript and uPlot (vendored); every text from a run goes in through
// textContent, never as HTML.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'data') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const r = await fetch(`api/${path}?${q}`, { credentials: 'same-origin' });
  let body;
  try { body = await r.json(); } catch { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

const fmt = (x, d = 3) => x == null || Number.isNaN(x) ? '—' : Number(x).toFixed(d);
const pct = (x, d = 1) => x == null ? '—' : (100 * x).toFixed(d);
// Hover values keep five significant digits: a learning rate of 3e-6 must not read as 0.
const fmtValue = v => v == null ? '—' : v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(5));

// ---- state, kept in the address's #fragment so a view can be linked and reloaded ----
const state = {
  view: 'curves', runs: [], x: 'step', smoothing: 0, log: false, metric: '',
  ro: '', step: '', filter: 'all', sort: 'natural', q: '', offset: 0,
  ev: '', evFilter: 'all', a: '', b: '', pl: '',
};
const PAGE = 50;

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of Object.keys(state)) {
    if (!p.has(k)) continue;
    const v = p.get(k);
    if (k === 'runs') state.runs = v ? v.split(',') : [];
    else if (k === 'smoothing' || k === 'offset') state[k] = Number(v) || 0;
    else if (k === 'log') state.log = v === '1';
    else state[k] = v;
  }
}

function writeHash() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (k === 'runs') { if (v.length) p.set(k, v.join(',')); }
    else if (k === 'log') { if (v) p.set(k, '1'); }
    else if (v !== '' && v !== 0) p.set(k, v);
  }
  history.replaceState(null, '', '#' + p.toString());
}

// ---- runs ----
let catalog = { roots: [], notes: [], runs: [] };
const byId = id => catalog.runs.find(r => r.id === id);
const has = (r, f) => r && r.files.includes(f);
const PALETTE = ['#2f6fdb', '#e4572e', '#17a398', '#f3a712', '#8e44ad', '#2e4057', '#d7263d', '#4caf50', '#ff7f0e', '#7f8c8d'];
const colorOf = id => PALETTE[Math.max(0, state.runs.indexOf(id)) % PALETTE.length];

async function loadRuns() {
  catalog = await api('runs');
  $('#roots').textContent = catalog.roots.map(r => r.path).join('  ·  ');
  state.runs = state.runs.filter(id => byId(id));
  if (!state.runs.length) {
    const first = catalog.runs.find(r => has(r, 'metrics.jsonl') && r.rows > 0) || catalog.runs.find(r => has(r, 'metrics.jsonl'));
    if (first) state.runs = [first.id];
  }
  renderSidebar();
}

function depthOf(r) { let d = 0, p = r.parent; while (p) { d++; p = byId(p)?.parent; } return d; }

function renderSidebar() {
  const ul = $('#runs');
  ul.replaceChildren();
  if (!catalog.runs.length) { ul.append(el('li', { class: 'muted', text: 'no runs yet' })); return; }
  for (const r of catalog.runs) {
    const selectable = has(r, 'metrics.jsonl');
    const checked = state.runs.includes(r.id);
    const box = el('input', { type: 'checkbox', title: 'overlay its curves', disabled: selectable ? null : 'disabled' });
    box.checked = checked;
    box.addEventListener('change', () => {
      state.runs = box.checked ? [...state.runs, r.id] : state.runs.filter(x => x !== r.id);
      renderSidebar(); schedule();
    });
    const name = r.id.split('/').pop();
    ul.append(el('li', { style: `padding-left:${12 + 14 * depthOf(r)}px`, data: { run: r.id }, title: r.dir },
      box,
      el('span', { class: 'swatch', style: checked ? `background:${colorOf(r.id)}` : '' }),
      el('span', { class: 'name', text: name, onclick: () => focusRun(r) }),
      el('span', { class: `badge ${r.kind}`, text: r.kind }),
      r.rows != null ? el('span', { class: 'badge', text: `${r.rows}`, title: 'metric rows' }) : null,
      r.notes.length ? el('span', { class: 'badge warn', text: '!', title: r.notes.join('\n') }) : null));
  }
}

function focusRun(r) {
  if (r.kind === 'group') { state.pl = r.id; state.view = 'pipeline'; }
  else if (r.kind === 'eval' || r.kind === 'sample') { state.ev = r.id; state.view = 'evals'; }
  else if (has(r, 'rollouts.jsonl') && state.view === 'rollouts') { state.ro = r.id; state.offset = 0; }
  else if (has(r, 'metrics.jsonl')) { if (!state.runs.includes(r.id)) state.runs = [...state.runs, r.id]; state.view = 'curves'; }
  if (has(r, 'rollouts.jsonl') && !state.ro) state.ro = r.id;
  renderSidebar(); schedule();
}

function notices(groups) {
  const box = $('#notices');
  box.replaceChildren();
  const all = [...(catalog.notes.length ? [['board', catalog.notes]] : []), ...groups.filter(([, n]) => n && n.length)];
  for (const [who, notes] of all)
    box.append(el('div', { class: 'notice' }, el('b', { text: who }), ` — ${notes.length === 1 ? 'note' : notes.length + ' notes'}:`,
      el('ul', {}, notes.map(n => el('li', { text: n })))));
}

function emptyView(container, text) { container.replaceChildren(el('div', { class: 'empty', text })); }

function selectOptions(select, runs, current, label = r => r.id) {
  select.replaceChildren(...runs.map(r => el('option', { value: r.id, text: label(r) })));
  if (current && runs.some(r => r.id === current)) select.value = current;
  return select.value;
}

// ---- curves ----
const metrics = new Map(); // run id → {generation, rows, step, wall, keys, columns, notes}
const charts = new Map();  // metric key → {u, box, signature}

async function loadMetrics(id) {
  const have = metrics.get(id);
  const j = await api('metrics', { run: id, from: have ? have.rows : 0, generation: have ? have.generation : '' });
  if (!have || j.from === 0) {
    metrics.set(id, { generation: j.generation, rows: j.rows, step: j.step, wall: j.wall, keys: j.keys, columns: j.columns, notes: j.notes });
    return;
  }
  const n = j.step.length;
  for (const k of j.keys) if (!have.columns[k]) have.columns[k] = new Array(have.step.length).fill(null);
  for (const k of Object.keys(have.columns)) {
    const add = j.columns[k];
    for (let i = 0; i < n; i++) have.columns[k].push(add ? add[i] : null);
  }
  have.step.push(...j.step); have.wall.push(...j.wall);
  Object.assign(have, { generation: j.generation, rows: j.rows, keys: j.keys, notes: j.notes });
}

// Titles of the metrics the trainers write; anything else is drawn under its own key.
const KNOWN = [
  ['reward', 'Mean reward'], ['reward_std', 'Reward std within groups'], ['accuracy', 'Training accuracy (rollouts)'],
  [/^rewards\/(.+)\/mean$/, m => `Reward: ${m[1]} (mean)`], [/^rewards\/(.+)\/std$/, m => `Reward: ${m[1]} (std)`],
  ['completions/mean_length', 'Mean response length (tokens)'], ['completions/max_length', 'Max response length (tokens)'],
  ['completions/min_length', 'Min response length (tokens)'], ['completions/clipped_ratio', 'Truncated completions (share)'],
  ['kl', 'KL to the reference'], ['entropy', 'Entropy (nats/token)'], [/^clip_ratio/, m => `Clip ratio ${m.input.slice(10)}`.trim()],
  ['frac_reward_zero_std', 'Groups with zero reward std'], ['loss', 'Loss'], ['eval_loss', 'Held-out loss'],
  ['mean_token_accuracy', 'Token accuracy'], ['eval_mean_token_accuracy', 'Held-out token accuracy'],
  ['learning_rate', 'Learning rate'], ['lr', 'Learning rate'], ['grad_norm', 'Gradient norm'],
  ['num_tokens', 'Tokens trained on'], ['epoch', 'Epoch'], ['skipped', 'Skipped steps (non-finite loss)'], ['skipped_updates', 'Skipped updates'],
  [/tokens_per_second$/, m => `Tokens/s (${m.input.replace(/_?tokens_per_second$/, '') || 'all'})`],
  [/flops_per_second$/, m => `FLOP/s (${m.input.replace(/_?flops_per_second$/, '')})`],
  [/memory|rss/, m => `Memory: ${m.input}`], [/_seconds$/, m => `Seconds: ${m.input.replace(/_seconds$/, '')}`],
];

function metricInfo(key) {
  for (let i = 0; i < KNOWN.length; i++) {
    const [pat, title] = KNOWN[i];
    if (typeof pat === 'string') { if (pat === key) return { rank: i, title }; }
    else { const m = key.match(pat); if (m) return { rank: i, title: title(m) }; }
  }
  return { rank: KNOWN.length, title: key, unknown: true };
}

function smooth(ys, w) {
  if (!w) return ys;
  let last = 0, n = 0;
  return ys.map(y => {
    if (y == null) return null;
    last = last * w + (1 - w) * y; n++;
    return last / (1 - Math.pow(w, n)); // TensorBoard's debiased EMA
  });
}

function chartData(key, allIds) {
  const ids = allIds.filter(id => metrics.get(id).keys.includes(key));
  const xsOf = id => state.x === 'wall' ? metrics.get(id).wall : metrics.get(id).step;
  const xset = new Set();
  for (const id of ids) { const col = metrics.get(id).columns[key] || []; xsOf(id).forEach((x, i) => { if (col[i] != null) xset.add(x); }); }
  const xs = [...xset].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  let hidden = 0;
  const series = [];
  for (const id of ids) {
    const ys = new Array(xs.length).fill(null);
    const col = metrics.get(id).columns[key] || [];
    xsOf(id).forEach((x, i) => { if (col[i] != null) ys[at.get(x)] = col[i]; });
    let shown = ys;
    if (state.log) shown = ys.map(y => { if (y != null && y <= 0) { hidden++; return null; } return y; });
    series.push({ id, raw: shown, smoothed: smooth(shown, state.smoothing) });
  }
  return { xs, series, hidden, ids };
}

async function renderCurves() {
  const box = $('#charts');
  const ids = state.runs.filter(id => has(byId(id), 'metrics.jsonl'));
  if (!ids.length) {
    for (const c of charts.values()) c.u.destroy();
    charts.clear();
    notices([]);
    emptyView(box, catalog.runs.length ? 'Tick a run with metrics.jsonl in the list on the left.' : 'No runs found below the folders given to r1 board (yet).');
    return;
  }
  await Promise.all(ids.map(loadMetrics));
  notices(ids.map(id => [id, metrics.get(id).notes]));
  const filter = state.metric.trim().toLowerCase();
  const keys = [...new Set(ids.flatMap(id => metrics.get(id).keys))]
    .filter(k => k !== 'step' && (!filter || k.toLowerCase().includes(filter) || metricInfo(k).title.toLowerCase().includes(filter)))
    .sort((a, b) => metricInfo(a).rank - metricInfo(b).rank || a.localeCompare(b));
  if (!keys.length) {
    for (const c of charts.values()) c.u.destroy();
    charts.clear();
    emptyView(box, ids.every(id => !metrics.get(id).rows) ? 'metrics.jsonl has no complete rows yet.' : 'No metric matches the filter.');
    return;
  }
  if (box.querySelector('.empty')) box.replaceChildren();
  for (const [k, c] of charts) if (!keys.includes(k)) { c.u.destroy(); c.box.remove(); charts.delete(k); }
  const width = Math.max(360, (box.clientWidth >= 900 ? box.clientWidth / 2 : box.clientWidth) - 30);
  keys.forEach((key, order) => {
    const { xs, series, hidden, ids: drawn } = chartData(key, ids);
    const signature = JSON.stringify([drawn, state.x, state.log, state.smoothing > 0]);
    let c = charts.get(key);
    if (c && c.signature !== signature) { c.u.destroy(); c.box.remove(); charts.delete(key); c = null; }
    const data = [xs];
    for (const s of series) { data.push(s.smoothed); if (state.smoothing > 0) data.push(s.raw); }
    if (!c) {
      const info = metricInfo(key);
      const boxEl = el('div', { class: 'chart', data: { metric: key } },
        el('h3', {}, info.title, el('span', { class: 'key', text: info.unknown ? '(not a metric the board knows; drawn as it is)' : key })),
        el('div', { class: 'plot' }), el('div', { class: 'note' }));
      const uSeries = [{ label: state.x === 'wall' ? 'time (s)' : 'step' }];
      for (const s of series) {
        const color = colorOf(s.id);
        const value = (u, v) => fmtValue(v);
        uSeries.push({ label: s.id, stroke: color, width: 1.5, spanGaps: true, points: { size: 4 }, value });
        if (state.smoothing > 0) uSeries.push({ label: `${s.id} (raw)`, stroke: color + '44', width: 1, spanGaps: true, points: { show: false }, value });
      }
      const u = new uPlot({
        width, height: 220, series: uSeries,
        scales: { x: { time: false }, y: state.log ? { distr: 3 } : {} },
        axes: [{ label: state.x === 'wall' ? 'wall time (s)' : 'step', size: 40 }, { size: 64 }],
        cursor: { sync: { key: 'curves' } }, legend: { live: true },
      }, data, boxEl.querySelector('.plot'));
      c = { u, box: boxEl, signature };
      charts.set(key, c);
    } else c.u.setData(data);
    c.box.querySelector('.note').textContent = hidden ? `${hidden} value(s) ≤ 0 hidden on the log scale` : '';
    if (box.children[order] !== c.box) box.insertBefore(c.box, box.children[order] || null);
  });
}

// ---- rollouts ----
function splitThink(text) {
  const open = text.indexOf('<think>'), close = text.indexOf('</think>');
  if (close >= 0) {
    const start = open >= 0 && open < close ? open + 7 : 0;
    return { before: open > 0 ? text.slice(0, open) : '', think: text.slice(start, close), answer: text.slice(close + 8) };
  }
  if (open >= 0) return { before: text.slice(0, open), think: text.slice(open + 7), answer: '', unclosed: true };
  return { before: '', think: null, answer: text };
}

function highlighted(text, q) {
  const span = el('span');
  if (!q) { span.textContent = text; return span; }
  const lower = text.toLowerCase(), needle = q.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, at)) {
    span.append(text.slice(at, i), el('mark', { text: text.slice(i, i + q.length) }));
    at = i + q.length;
  }
  span.append(text.slice(at));
  return span;
}

function completionView(text, q) {
  const parts = splitThink(text || '');
  const out = [];
  if (parts.before.trim()) out.push(el('div', { class: 'text' }, highlighted(parts.before, q)));
  if (parts.think != null) {
    const d = el('details', { class: 'think' },
      el('summary', { text: parts.think.trim() ? `reasoning (${parts.think.length} characters${parts.unclosed ? ', no </think>' : ''})` : 'reasoning: empty' }),
      el('div', { class: 'text' }, highlighted(parts.think, q)));
    if (q && parts.think.toLowerCase().includes(q.toLowerCase())) d.open = true;
    out.push(d);
  }
  out.push(el('div', { class: 'text answer' }, highlighted(parts.answer, q)));
  return out;
}

function verdictBadge(correct) {
  if (correct == null) return el('span', { class: 'badge', text: 'no verdict' });
  return el('span', { class: `badge ${correct ? 'ok' : 'bad'}`, text: correct ? '✓ correct' : '✗ wrong' });
}

async function renderRollouts() {
  const list = $('#ro-list');
  const candidates = catalog.runs.filter(r => has(r, 'rollouts.jsonl'));
  if (!candidates.length) { notices([]); $('#ro-summary').textContent = ''; $('#ro-pager').replaceChildren(); $('#ro-pager-bottom').replaceChildren(); emptyView(list, 'No run with rollouts.jsonl.'); return; }
  state.ro = selectOptions($('#ro-run'), candidates, state.ro);
  const summary = await api('rollouts/summary', { run: state.ro });
  const stepSel = $('#ro-step');
  stepSel.replaceChildren(el('option', { value: '', text: `all steps (${summary.steps.length})` }),
    ...summary.steps.map(s => el('option', { value: String(s.step), text: `step ${s.step} · ${s.completions} · reward ${fmt(s.mean_reward, 2)}${s.accuracy != null ? ` · acc ${pct(s.accuracy, 0)}%` : ''}` })));
  if (state.step && summary.steps.some(s => String(s.step) === state.step)) stepSel.value = state.step; else state.step = '';
  $('#ro-filter').value = state.filter; $('#ro-sort').value = state.sort;
  if (document.activeElement !== $('#ro-search')) $('#ro-search').value = state.q;
  const page = await api('rollouts', { run: state.ro, step: state.step, filter: state.filter, sort: state.sort, q: state.q, offset: state.offset, limit: PAGE });
  notices([[state.ro, summary.notes]]);
  $('#ro-summary').textContent = `${summary.completions} completions in ${summary.groups} groups over ${summary.steps.length} steps; ` +
    `${summary.zero_std_groups} zero-std groups; reward functions: ${summary.reward_functions.join(', ') || 'none'}` +
    (summary.has_verdicts ? '' : ' (no accuracy reward: correct/wrong unknown)');
  for (const p of [$('#ro-pager'), $('#ro-pager-bottom')]) {
    const last = Math.min(page.offset + PAGE, page.total);
    p.replaceChildren(
      el('button', { text: '‹ previous', disabled: page.offset > 0 ? null : 'disabled', onclick: () => { state.offset = Math.max(0, state.offset - PAGE); schedule(); } }),
      el('span', { class: 'count', text: page.total ? `${page.offset + 1}–${last} of ${page.total}` : 'nothing matches' }),
      el('button', { text: 'next ›', disabled: last < page.total ? null : 'disabled', onclick: () => { state.offset += PAGE; schedule(); } }));
  }
  const frag = document.createDocumentFragment();
  let group = null, groupKey = null;
  for (const it of page.items) {
    const key = `${it.step}/${it.group}`;
    if (key !== groupKey) {
      groupKey = key;
      group = el('div', { class: 'group', data: { step: it.step, group: it.group } },
        el('div', { class: 'group-head' },
          el('b', { text: `step ${it.step} · group ${it.group}` }),
          el('span', { text: `reference ${it.reference ?? '—'}` }),
          el('span', { text: `${it.group_size} completions, mean reward ${fmt(it.group_mean_reward, 3)}` }),
          it.group_zero_std ? el('span', { class: 'badge warn', text: 'zero std: no signal', title: 'every completion of this group got the same reward, so its advantages are 0' }) : null,
          el('div', { class: 'prompt' }, highlighted(String(it.prompt ?? ''), state.q))));
      frag.append(group);
    }
    const rewards = it.rewards && typeof it.rewards === 'object' ? Object.entries(it.rewards) : [];
    group.append(el('div', { class: 'rollout', data: { correct: String(it.correct), line: it.line } },
      el('div', { class: 'meta' },
        el('b', { text: `#${it.index_in_group}` }), verdictBadge(it.correct),
        el('span', {}, 'reward ', el('b', { text: fmt(it.reward, 3) })),
        ...rewards.map(([n, v]) => el('span', { class: 'badge', text: `${n} ${fmt(v, 2)}` })),
        it.advantage != null ? el('span', { title: 'as the trainer wrote it' }, 'advantage ', el('b', { text: fmt(it.advantage, 3) }))
          : el('span', { title: 'the run did not log its advantage: reward − group mean (Dr. GRPO, scale_rewards none); ÷ std is GRPO\'s scale_rewards group' },
            'r − mean ', el('b', { text: fmt(it.centred_reward, 3) }), ` (÷ std ${fmt(it.group_scaled_advantage, 2)})`),
        el('span', {}, el('b', { text: String(it.tokens ?? '—') }), ' tokens'),
        it.truncated ? el('span', { class: 'badge bad', text: 'truncated' }) : null,
        it.weight_version ? el('span', { text: String(it.weight_version) }) : null,
        el('span', { text: `line ${it.line}` })),
      it.error ? el('div', { class: 'text', text: it.error }) : completionView(String(it.completion ?? ''), state.q)));
  }
  list.replaceChildren(frag);
  if (!page.items.length) emptyView(list, 'No completion matches.');
}

// ---- evals ----
let passkChart = null;

function scoreCards(j) {
  const k = j.k || 0;
  return [
    ['pass@1', `${pct(j.pass1)} ± ${pct(j.pass1_std_err)}`, `mean of ${k} samples per problem ± standard error across problems`],
    [`cons@${k}`, j.cons_at_k == null ? 'when finished' : pct(j.cons_at_k), 'majority vote of the samples'],
    [`pass@${k}`, j.pass_at_k && j.pass_at_k[String(k)] != null ? pct(j.pass_at_k[String(k)]) : '—', 'unbiased estimator'],
    ['problems', String(j.problems ?? 0), `${j.samples ?? 0} samples`],
    ['mean tokens', fmt(j.mean_completion_tokens, 0), `${pct(j.truncated_fraction)}% truncated`],
  ].map(([label, value, title]) => el('div', { class: 'card', title }, el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value })));
}

function groupTable(title, groups) {
  if (!groups) return null;
  return el('table', { class: 'grid' },
    el('tr', {}, ['by ' + title, 'problems', 'pass@1', 'cons@k'].map(h => el('th', { text: h }))),
    Object.entries(groups).map(([name, g]) => el('tr', {},
      el('td', { text: name }), el('td', { class: 'num', text: g.problems }),
      el('td', { class: 'num', text: `${pct(g.pass1)} ± ${pct(g.pass1_std_err)}` }), el('td', { class: 'num', text: g.cons_at_k == null ? '—' : pct(g.cons_at_k) }))));
}

function sampleView(s) {
  return el('div', { class: 'sample', data: { correct: String(s.correct) } },
    el('div', { class: 'meta' }, el('b', { text: `sample ${s.sample}` }), verdictBadge(s.correct),
      el('span', { text: `extracted ${s.extracted ?? '—'}` }), el('span', { text: `${s.completion_tokens ?? '—'} tokens` }),
      s.finish_reason === 'length' ? el('span', { class: 'badge bad', text: 'truncated' }) : null,
      s.reason ? el('span', { class: 'muted', text: s.reason }) : null),
    s.error ? el('div', { class: 'text', text: s.error }) :
      s.reasoning != null && s.reasoning !== '' ? [
        el('details', { class: 'think' }, el('summary', { text: `reasoning (${s.reasoning.length} characters)` }), el('div', { class: 'text', text: s.reasoning })),
        el('div', { class: 'text answer', text: s.answer ?? '' })] : completionView(String(s.text ?? s.answer ?? ''), ''));
}

async function renderEvals() {
  const candidates = catalog.runs.filter(r => r.kind === 'eval' || r.kind === 'sample');
  const cards = $('#ev-cards'), table = $('#ev-problems');
  if (!candidates.length) {
    notices([]); $('#ev-groups').replaceChildren(); $('#ev-passk').replaceChildren(); table.replaceChildren();
    emptyView(cards, 'No evaluation folder (samples.jsonl) below the given folders.'); return;
  }
  state.ev = selectOptions($('#ev-run'), candidates, state.ev);
  const j = await api('eval', { run: state.ev });
  notices([[state.ev, j.notes]]);
  cards.replaceChildren(el('div', { class: 'card' }, el('div', { class: 'label', text: j.live ? 'live' : 'finished' }),
    el('div', { class: 'value', text: String(j.bench ?? '') }), el('div', { class: 'label', text: String(j.model ?? '') })), ...scoreCards(j));
  const ks = Object.keys(j.pass_at_k || {}).map(Number).sort((a, b) => a - b);
  if (passkChart) { passkChart.destroy(); passkChart = null; }
  $('#ev-passk').replaceChildren();
  if (ks.length) {
    const cons = ks.map(k => k === j.k && j.cons_at_k != null ? 100 * j.cons_at_k : null);
    passkChart = new uPlot({
      width: 460, height: 240, title: 'pass@k (unbiased estimator)',
      scales: { x: { time: false }, y: { range: [0, 100] } },
      series: [{ label: 'k' }, { label: 'pass@k %', stroke: PALETTE[0], width: 2, points: { size: 6 } },
        { label: `cons@${j.k} %`, stroke: PALETTE[1], width: 0, points: { size: 10, fill: PALETTE[1] } }],
      axes: [{ label: 'k (samples per problem)', incrs: [1, 2, 4, 8, 16, 32, 64] }, { label: '% solved' }],
    }, [ks, ks.map(k => 100 * j.pass_at_k[String(k)]), cons], $('#ev-passk'));
  }
  $('#ev-groups').replaceChildren(...[groupTable('subject', j.by_subject), groupTable('level', j.by_level)].filter(Boolean));
  $('#ev-filter').value = state.evFilter;
  const rows = j.problem_rows.filter(p => state.evFilter === 'all' ? true : state.evFilter === 'solved' ? p.correct === p.samples
    : state.evFilter === 'unsolved' ? p.correct === 0 : p.correct > 0 && p.correct < p.samples);
  table.replaceChildren(el('tr', {}, ['problem', 'subject', 'level', 'gold', 'correct', 'majority answer'].map(h => el('th', { text: h }))));
  for (const p of rows) {
    const tr = el('tr', { class: 'problem', data: { id: p.id } },
      el('td', { text: p.id }), el('td', { text: p.subject ?? '' }), el('td', { text: p.level ?? '' }), el('td', { class: 'text', text: p.gold ?? '' }),
      el('td', { class: 'num' }, `${p.correct}/${p.samples} `, el('span', { class: 'bar', style: `width:${40 * p.correct / Math.max(1, p.samples)}px` }),
        el('span', { class: 'bar miss', style: `width:${40 * (p.samples - p.correct) / Math.max(1, p.samples)}px` })),
      el('td', { text: p.consensus_answer == null ? '—' : `${p.consensus_answer}${p.consensus_correct ? ' ✓' : ''}` }));
    tr.addEventListener('click', () => toggleSamples(tr, state.ev, p.id, 6));
    table.append(tr);
  }
  if (!rows.length) table.append(el('tr', {}, el('td', { colspan: 6, text: 'no problem matches' })));
}

async function toggleSamples(tr, run, id, colspan, other) {
  if (tr.nextSibling && tr.nextSibling.classList && tr.nextSibling.classList.contains('samples-row')) { tr.nextSibling.remove(); return; }
  const cell = el('td', { colspan, text: 'loading…' });
  tr.after(el('tr', { class: 'samples-row' }, cell));
  try {
    const sides = await Promise.all([run, other].filter(Boolean).map(r => api('eval/problem', { run: r, id })));
    const problem = sides[0].problem;
    cell.replaceChildren(
      problem && problem.gold != null ? el('div', { class: 'meta', text: `gold ${problem.gold}` }) : '',
      el('div', { class: sides.length > 1 ? 'side-by-side' : '' },
        sides.map((s, i) => el('div', { class: 'samples' }, sides.length > 1 ? el('b', { text: i ? 'B' : 'A' }) : null, s.samples.map(sampleView)))));
  } catch (e) { cell.textContent = e.message; }
}

// ---- compare ----
async function renderCompare() {
  const body = $('#cmp-body');
  const candidates = catalog.runs.filter(r => r.kind === 'eval' || r.kind === 'sample');
  if (candidates.length < 2) { notices([]); emptyView(body, 'Comparing needs two evaluation folders (samples.jsonl).'); return; }
  state.a = selectOptions($('#cmp-a'), candidates, state.a || candidates[0].id);
  state.b = selectOptions($('#cmp-b'), candidates, state.b || candidates.find(r => r.id !== state.a).id);
  const j = await api('compare', { a: state.a, b: state.b });
  notices([]);
  const ks = [...new Set([...Object.keys(j.a.pass_at_k || {}), ...Object.keys(j.b.pass_at_k || {})])].map(Number).sort((x, y) => x - y);
  const row = (label, fa, fb) => el('tr', {}, el('td', { text: label }), el('td', { class: 'num', text: fa(j.a) }), el('td', { class: 'num', text: fb ? fb(j.b) : fa(j.b) }));
  const scores = el('table', { class: 'grid', id: 'cmp-scores' },
    el('tr', {}, el('th', { text: '' }), el('th', { text: `A: ${j.a.id}` }), el('th', { text: `B: ${j.b.id}` })),
    row('bench · model', s => `${s.bench ?? ''} · ${s.model ?? ''}`),
    row('pass@1', s => `${pct(s.pass1)} ± ${pct(s.pass1_std_err)}`),
    ...ks.filter(k => k > 1).map(k => row(`pass@${k}`, s => s.pass_at_k && s.pass_at_k[k] != null ? pct(s.pass_at_k[k]) : '—')),
    row('cons@k', s => s.cons_at_k == null ? '—' : `${pct(s.cons_at_k)} (k=${s.k})`),
    row('problems · samples', s => `${s.problems} · ${s.samples}`));
  const subjects = [...new Set([...Object.keys(j.a.by_subject || {}), ...Object.keys(j.b.by_subject || {})])];
  const bySubject = subjects.length ? el('table', { class: 'grid' },
    el('tr', {}, ['subject', 'A pass@1', 'B pass@1'].map(h => el('th', { text: h }))),
    subjects.map(s => el('tr', {}, el('td', { text: s }),
      ...[j.a, j.b].map(x => el('td', { class: 'num', text: x.by_subject && x.by_subject[s] ? `${pct(x.by_subject[s].pass1)} ± ${pct(x.by_subject[s].pass1_std_err)}` : '—' }))))) : null;
  const only = (title, rows, cls) => {
    const t = el('table', { class: `grid ${cls}` }, el('tr', {}, ['problem', 'subject', 'level', 'gold', 'A correct', 'B correct'].map(h => el('th', { text: h }))));
    for (const p of rows) {
      const tr = el('tr', { class: 'problem', data: { id: p.id } }, el('td', { text: p.id }), el('td', { text: p.subject ?? '' }), el('td', { text: p.level ?? '' }),
        el('td', { class: 'text', text: p.gold ?? '' }), el('td', { class: 'num', text: `${p.a_correct}/${p.a_samples}` }), el('td', { class: 'num', text: `${p.b_correct}/${p.b_samples}` }));
      tr.addEventListener('click', () => toggleSamples(tr, state.a, p.id, 6, state.b));
      t.append(tr);
    }
    if (!rows.length) t.append(el('tr', {}, el('td', { colspan: 6, text: 'none' })));
    return [el('h2', { text: `${title} (${rows.length})` }), t];
  };
  body.replaceChildren(...[scores,
    el('p', { text: `On the ${j.shared_problems} problems both graded: A − B = ${(100 * j.pass1_difference).toFixed(1)} ± ${(100 * j.pass1_difference_std_err).toFixed(1)} points of pass@1 (paired); ` +
      `both solve ${j.both_solve}, neither ${j.neither_solves}. Solved means the majority vote is right (more than half the samples while an eval runs).` }),
    bySubject, ...only('Solved by A only', j.only_a, 'only-a'), ...only('Solved by B only', j.only_b, 'only-b')].filter(Boolean));
}

// ---- pipeline ----
let pipelineChart = null;

async function renderPipeline() {
  const groups = catalog.runs.filter(r => r.kind === 'group');
  const table = $('#pl-stages');
  if (!groups.length) {
    notices([]); $('#pl-report').textContent = ''; $('#pl-chart').replaceChildren();
    table.replaceChildren(el('tr', {}, el('td', { text: 'No pipeline or r1 zero folder (a folder whose stages are runs) below the given folders.' }))); return;
  }
  state.pl = selectOptions($('#pl-run'), groups, state.pl);
  const j = await api('pipeline', { run: state.pl });
  notices([[state.pl, j.notes]]);
  table.replaceChildren(el('tr', {}, ['#', 'stage', 'kind', 'rows', 'last loss', 'last reward', 'last accuracy', 'held-out pass@1'].map(h => el('th', { text: h }))),
    ...j.stages.map((s, i) => el('tr', { data: { stage: s.name } }, el('td', { text: i + 1 }), el('td', { text: s.name }), el('td', { text: s.kind ?? '—' }),
      el('td', { class: 'num', text: s.rows ?? '' }), el('td', { class: 'num', text: fmt(s.last_loss) }), el('td', { class: 'num', text: fmt(s.last_reward) }),
      el('td', { class: 'num', text: s.last_accuracy == null ? '—' : pct(s.last_accuracy) }),
      el('td', { class: 'num', text: s.pass1 == null ? '—' : `${pct(s.pass1)} ± ${pct(s.pass1_std_err)} (${s.eval_problems}×${s.eval_k})` }))));
  if (pipelineChart) { pipelineChart.destroy(); pipelineChart = null; }
  $('#pl-chart').replaceChildren();
  const scored = j.stages.map((s, i) => [i + 1, s.pass1]).filter(([, p]) => p != null);
  if (scored.length) {
    pipelineChart = new uPlot({
      width: 460, height: 220, title: 'held-out pass@1 after each stage', scales: { x: { time: false }, y: { range: [0, 100] } },
      series: [{ label: 'stage' }, { label: 'pass@1 %', stroke: PALETTE[0], width: 2, points: { size: 7 } }],
      axes: [{ label: 'stage', incrs: [1], values: (u, vals) => vals.map(v => (j.stages[v - 1] || {}).name || '') }, { label: '%' }],
    }, [scored.map(s => s[0]), scored.map(s => 100 * s[1])], $('#pl-chart'));
  }
  $('#pl-report').textContent = j.report ?? '(no report.md yet)';
}

// ---- rendering, one at a time ----
const views = { curves: renderCurves, rollouts: renderRollouts, evals: renderEvals, compare: renderCompare, pipeline: renderPipeline };
let running = null, again = false;
const board = window.board = { state, charts, metrics, renders: 0, errors: [] };

async function schedule() {
  if (running) { again = true; return running; }
  running = (async () => {
    do {
      again = false;
      writeHash();
      for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === state.view);
      for (const v of document.querySelectorAll('.view')) v.classList.toggle('active', v.id === `view-${state.view}`);
      try { await views[state.view](); }
      catch (e) { board.errors.push(e.message); notices([['error', [e.message]]]); }
      board.renders++;
      document.body.dataset.renders = board.renders;
    } while (again);
    running = null;
  })();
  return running;
}

function bind() {
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => { state.view = b.dataset.view; schedule(); });
  const on = (sel, ev, f) => $(sel).addEventListener(ev, e => { f(e.target); schedule(); });
  on('#xaxis', 'change', t => { state.x = t.value; });
  on('#smoothing', 'input', t => { state.smoothing = Number(t.value); $('#smoothing-value').textContent = t.value; });
  on('#logscale', 'change', t => { state.log = t.checked; });
  on('#metric-filter', 'input', t => { state.metric = t.value; });
  on('#ro-run', 'change', t => { state.ro = t.value; state.step = ''; state.offset = 0; });
  on('#ro-step', 'change', t => { state.step = t.value; state.offset = 0; });
  on('#ro-filter', 'change', t => { state.filter = t.value; state.offset = 0; });
  on('#ro-sort', 'change', t => { state.sort = t.value; state.offset = 0; });
  let typing;
  $('#ro-search').addEventListener('input', e => { clearTimeout(typing); typing = setTimeout(() => { state.q = e.target.value; state.offset = 0; schedule(); }, 250); });
  on('#ev-run', 'change', t => { state.ev = t.value; });
  on('#ev-filter', 'change', t => { state.evFilter = t.value; });
  on('#cmp-a', 'change', t => { state.a = t.value; });
  on('#cmp-b', 'change', t => { state.b = t.value; });
  on('#pl-run', 'change', t => { state.pl = t.value; });
  window.addEventListener('hashchange', () => { readHash(); syncControls(); schedule(); });
  let resize;
  window.addEventListener('resize', () => { clearTimeout(resize); resize = setTimeout(() => { for (const c of charts.values()) { c.u.destroy(); c.box.remove(); } charts.clear(); schedule(); }, 200); });
}

function syncControls() {
  $('#xaxis').value = state.x; $('#smoothing').value = state.smoothing; $('#smoothing-value').textContent = String(state.smoothing);
  $('#logscale').checked = state.log; $('#metric-filter').value = state.metric;
}

// Live: the server says which runs changed; the view on screen asks for what is new.
function listen() {
  const live = $('#live');
  const es = new EventSource('api/events');
  es.addEventListener('hello', () => { live.textContent = 'live'; live.classList.remove('off'); });
  es.onerror = () => { live.textContent = 'reconnecting'; live.classList.add('off'); };
  es.addEventListener('runs', async () => { await loadRuns(); schedule(); });
  es.addEventListener('change', async ev => {
    const ids = JSON.parse(ev.data).runs || [];
    await loadRuns();
    const shown = { curves: state.runs, rollouts: [state.ro], evals: [state.ev], compare: [state.a, state.b], pipeline: [state.pl] }[state.view] || [];
    const groupOf = id => { const r = byId(id); return r && r.parent; };
    if (ids.some(id => shown.includes(id) || shown.includes(groupOf(id)))) schedule();
  });
  board.events = es;
}

(async function main() {
  readHash(); syncControls(); bind();
  try { await loadRuns(); } catch (e) { notices([['error', [e.message]]]); }
  await schedule();
  listen();
})();
