-- The UI benchmark's project (scripts/bench-ui.sh): {traces} traces of an LLM application over the
-- 30 days before {end}, {per_trace} observations each (a root span, a retrieval span, a generation,
-- a tool call and an event), a score on every third trace, and two large traces of 1,000 and
-- 10,000 observations. Generated inside ClickHouse (INSERT … SELECT FROM numbers), so seeding
-- millions of rows takes minutes, not hours of HTTP. Text is drawn word by word from a vocabulary,
-- so it compresses about as natural language does; the attributes are those real instrumentations set.
--
-- Placeholders, replaced by the script: {project}, {traces}, {per_trace}, {end}.

INSERT INTO traces (id, timestamp, name, user_id, metadata, release, version, project_id, environment,
    public, bookmarked, tags, input, output, session_id, created_at, updated_at, event_ts, is_deleted)
WITH
    ['the','customer','asked','about','their','invoice','for','last','month','and','wants','to','know','why',
     'charge','is','higher','than','expected','please','check','account','history','summarize','policy',
     'refund','within','days','of','purchase','order','shipping','address','update','password','reset',
     'email','we','can','help','you','with','that','here','are','steps','first','open','settings','then',
     'select','billing','plan','upgrade','downgrade','cancel','subscription','support','ticket','escalate',
     'agent','model','answer','question','document','retrieved','context','relevant','passage','source',
     'quarterly','report','revenue','growth','region','europe','america','asia','product','feature','release',
     'notes','bug','fix','performance','latency','error','timeout','retry','request','response','token',
     'limit','exceeded','sorry','unfortunately','however','also','because','which','when','where','how',
     'many','much','more','less','should','would','could','will','may','not','only','all','some','any',
     'each','every','other','new','old','good','best','great','small','large','data','table','query',
     'result','value','number','date','time','user','team','project','service','system','api','key',
     'configuration','deploy','version','production','staging','test','review','approve','reject'] AS words,
    toDateTime64('{end}', 3) AS end_time,
    number AS i,
    end_time - toIntervalMillisecond(intDiv(i * 2592000000, {traces})) AS ts,
    (j, n) -> arrayStringConcat(arrayMap(k -> words[1 + cityHash64(i, j, k) % length(words)], range(n)), ' ') AS text
SELECT
    lower(hex(cityHash64(i, 'trace'))) AS id,
    ts,
    ['chat-completion', 'rag-answer', 'support-agent', 'summarize-ticket', 'classify-intent'][1 + i % 5],
    concat('user-', toString(cityHash64(i, 'user') % 2000)),
    map('team', ['search', 'billing', 'support'][1 + i % 3], 'feature', ['chat', 'faq', 'escalation', 'digest'][1 + i % 4],
        'request_id', lower(hex(cityHash64(i, 'request')))),
    concat('v1.', toString(i % 7)),
    concat('2026-11-', toString(1 + i % 28)),
    '{project}',
    if(i % 10 = 0, 'staging', 'production'),
    false,
    false,
    [['production', 'rag'], ['beta'], [], ['production', 'chat', 'vip'], ['eval']][1 + cityHash64(i, 'tags') % 5],
    concat('{"messages":[{"role":"system","content":"You are a helpful assistant for ', ['search', 'billing', 'support'][1 + i % 3],
        '."},{"role":"user","content":"', text('in', 40 + i % 60), '"}]}'),
    concat('{"role":"assistant","content":"', text('out', 60 + i % 140), '"}'),
    concat('session-', toString(intDiv(i, 4))),
    ts, ts, ts, 0
FROM numbers({traces});

INSERT INTO observations (id, trace_id, project_id, environment, type, parent_observation_id, start_time, end_time,
    name, metadata, level, status_message, version, input, output, provided_model_name, internal_model_id,
    model_parameters, provided_usage_details, usage_details, provided_cost_details, cost_details, total_cost,
    completion_start_time, prompt_id, prompt_name, prompt_version, created_at, updated_at, event_ts, is_deleted)
WITH
    ['the','customer','asked','about','their','invoice','for','last','month','and','wants','to','know','why',
     'charge','is','higher','than','expected','please','check','account','history','summarize','policy',
     'refund','within','days','of','purchase','order','shipping','address','update','password','reset',
     'email','we','can','help','you','with','that','here','are','steps','first','open','settings','then',
     'select','billing','plan','upgrade','downgrade','cancel','subscription','support','ticket','escalate',
     'agent','model','answer','question','document','retrieved','context','relevant','passage','source'] AS words,
    toDateTime64('{end}', 3) AS end_time,
    intDiv(number, {per_trace}) AS i,
    number % {per_trace} AS kind,
    end_time - toIntervalMillisecond(intDiv(i * 2592000000, {traces})) AS ts,
    lower(hex(cityHash64(i, 'trace'))) AS trace,
    (j, n) -> arrayStringConcat(arrayMap(k -> words[1 + cityHash64(i, kind, j, k) % length(words)], range(n)), ' ') AS text,
    cityHash64(i, 'latency') % 4000 AS latency_ms,
    kind = 2 AS is_generation,
    200 + cityHash64(i, 'in') % 3000 AS input_tokens,
    20 + cityHash64(i, 'out') % 800 AS output_tokens
SELECT
    lower(hex(cityHash64(i, kind, 'observation'))),
    trace,
    '{project}',
    if(i % 10 = 0, 'staging', 'production'),
    ['SPAN', 'SPAN', 'GENERATION', 'TOOL', 'EVENT'][1 + kind % 5],
    if(kind = 0, NULL, lower(hex(cityHash64(i, toUInt64(0), 'observation')))),
    ts + toIntervalMillisecond(kind * 10),
    if(kind = 4, NULL, ts + toIntervalMillisecond(kind * 10 + latency_ms)),
    ['handle-request', 'retrieve-documents', 'llm-call', 'search-knowledge-base', 'answer-sent'][1 + kind % 5],
    map('langfuse.sdk', 'python', 'step', toString(kind)),
    if(cityHash64(i, 'error') % 200 = 0 AND kind = 2, 'ERROR', 'DEFAULT'),
    if(cityHash64(i, 'error') % 200 = 0 AND kind = 2, 'Rate limit exceeded: retry after 20s', NULL),
    NULL,
    if(kind = 4, NULL, concat('{"query":"', text('in', 20 + kind * 10), '"}')),
    if(kind = 4, NULL, concat('"', text('out', 30 + kind * 20), '"')),
    if(is_generation, ['gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4-5'][1 + i % 3], NULL),
    NULL,
    if(is_generation, '{"temperature":0.2,"max_tokens":1024}', NULL),
    if(is_generation, map('input', input_tokens, 'output', output_tokens, 'total', input_tokens + output_tokens), map()),
    if(is_generation, map('input', input_tokens, 'output', output_tokens, 'total', input_tokens + output_tokens), map()),
    map(),
    if(is_generation, map('input', toDecimal64(input_tokens * 0.00000015, 12), 'output', toDecimal64(output_tokens * 0.0000006, 12),
        'total', toDecimal64(input_tokens * 0.00000015 + output_tokens * 0.0000006, 12)), map()),
    if(is_generation, toDecimal64(input_tokens * 0.00000015 + output_tokens * 0.0000006, 12), NULL),
    if(is_generation, ts + toIntervalMillisecond(kind * 10 + 150), NULL),
    NULL, NULL, NULL,
    ts, ts, ts, 0
FROM numbers({traces} * {per_trace});

INSERT INTO scores (id, timestamp, project_id, environment, trace_id, observation_id, name, value, source,
    comment, metadata, data_type, string_value, created_at, updated_at, event_ts, is_deleted)
WITH
    toDateTime64('{end}', 3) AS end_time,
    number * 3 AS i,
    end_time - toIntervalMillisecond(intDiv(i * 2592000000, {traces})) AS ts
SELECT
    lower(hex(cityHash64(i, 'score'))),
    ts + toIntervalSecond(5),
    '{project}',
    if(i % 10 = 0, 'staging', 'production'),
    lower(hex(cityHash64(i, 'trace'))),
    NULL,
    'helpfulness',
    (cityHash64(i, 'score-value') % 101) / 100,
    'API',
    NULL,
    map(),
    'NUMERIC',
    NULL,
    ts, ts, ts, 0
FROM numbers(intDiv({traces}, 3));

-- Two large traces (an agent run): {large} observations under one root, most of them nested two deep.
INSERT INTO traces (id, timestamp, name, user_id, metadata, release, version, project_id, environment,
    public, bookmarked, tags, input, output, session_id, created_at, updated_at, event_ts, is_deleted)
SELECT concat('bench-large-', toString(size)), toDateTime64('{end}', 3) - toIntervalHour(1), 'agent-run', 'user-large', map(),
    NULL, NULL, '{project}', 'production', false, false, ['agent'], '"Run the nightly reconciliation"', '"done"',
    NULL, now64(3), now64(3), now64(3), 0
FROM (SELECT arrayJoin([1000, 10000]) AS size);

INSERT INTO observations (id, trace_id, project_id, environment, type, parent_observation_id, start_time, end_time,
    name, metadata, level, status_message, version, input, output, provided_model_name, internal_model_id,
    model_parameters, provided_usage_details, usage_details, provided_cost_details, cost_details, total_cost,
    completion_start_time, prompt_id, prompt_name, prompt_version, created_at, updated_at, event_ts, is_deleted)
SELECT
    concat('large-', toString(size), '-', toString(n)),
    concat('bench-large-', toString(size)),
    '{project}', 'production',
    if(n = 0, 'AGENT', if(n % 10 = 0, 'SPAN', if(n % 10 = 5, 'GENERATION', 'TOOL'))),
    if(n = 0, NULL, if(n % 10 = 0, concat('large-', toString(size), '-0'), concat('large-', toString(size), '-', toString(intDiv(n, 10) * 10)))),
    toDateTime64('{end}', 3) - toIntervalHour(1) + toIntervalMillisecond(n * 20),
    toDateTime64('{end}', 3) - toIntervalHour(1) + toIntervalMillisecond(n * 20 + if(n = 0, size * 20, 15)),
    if(n = 0, 'reconcile', concat('step-', toString(n))),
    map(), if(n % 997 = 0 AND n > 0, 'ERROR', 'DEFAULT'), NULL, NULL,
    concat('{"step":', toString(n), ',"ledger":"', repeat('account entry ', 20), '"}'),
    concat('"', repeat('matched ', 30), '"'),
    if(n % 10 = 5, 'gpt-4o-mini', NULL), NULL, NULL,
    if(n % 10 = 5, map('input', toUInt64(500), 'output', toUInt64(50), 'total', toUInt64(550)), map()),
    if(n % 10 = 5, map('input', toUInt64(500), 'output', toUInt64(50), 'total', toUInt64(550)), map()),
    map(), map(), if(n % 10 = 5, toDecimal64(0.0001, 12), NULL), NULL, NULL, NULL, NULL,
    now64(3), now64(3), now64(3), 0
FROM (SELECT arrayJoin([1000, 10000]) AS size) ARRAY JOIN range(size) AS n;
