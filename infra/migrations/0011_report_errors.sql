-- Failed reports said why in the exception's own words, which could name server
-- paths; the reason now goes to the worker's log and a report shows a fixed
-- message (api.reports.service.FAILED_MESSAGE). Reports that failed before this
-- migration are given the same message.
-- depends: 0010_review_indexes

UPDATE reports SET error = 'the report could not be written (the server''s log says why); retry it'
    WHERE status = 'failed';
