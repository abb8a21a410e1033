-- Inputs and outputs of traces and observations are compressed with ZSTD level 1 instead of 3.
--
-- They are most of the bytes ingestion writes, and ClickHouse compresses them again at every merge
-- of a ReplacingMergeTree part, so their codec is a large share of its CPU per span: on generated
-- natural-language text, level 3 took about 60% more CPU than level 1 to insert and twice as much to
-- merge, for about 12% fewer bytes. Only the codec changes (no mutation): parts written from now on
-- use level 1, older parts keep level 3 until a merge rewrites them, and both read the same.
--
-- Re-runnable: setting the codec a column already has changes nothing.
ALTER TABLE observations
    MODIFY COLUMN IF EXISTS input CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS output CODEC(ZSTD(1));

ALTER TABLE traces
    MODIFY COLUMN IF EXISTS input CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS output CODEC(ZSTD(1));
