-- The W3C traceparent of the request that queued a job (an upload, a retry): the job's own trace
-- links to it, so an operator can go from an upload's trace to its packaging and back.
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
