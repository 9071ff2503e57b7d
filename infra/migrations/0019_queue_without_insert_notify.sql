-- Queueing a job no longer sends a NOTIFY: procrastinate's trigger that announced
-- every new job to listening workers is disabled, and waiting workers look for
-- jobs every infra.queue.FETCH_POLL_SECONDS instead (api.worker).
--
-- Why: a transaction that sent NOTIFY takes one database-wide lock at commit and
-- holds it until its commit record is flushed (PostgreSQL's async.c,
-- PreCommit_Notify), so that notifications arrive in commit order. Every upload
-- queues its photo's job in its own transaction, so every upload's commit, its
-- flush included, waited in one line. bench/queue_notify.py, 16 sessions each
-- inserting a row and committing (embedded cluster, fsync on, this machine):
-- 3,030 commits/s without NOTIFY, 1,410 with (p50 4.0 against 9.5 ms); while 4
-- threads write and fsync 300 KB files beside, as uploads store their photos,
-- 1,870 against 580 (p50 6.4 against 26.5 ms). The trigger for aborting a job
-- stays.
--
-- procrastinate's own migrations could create the trigger again (a new version
-- of it): tests/infra/test_queue.py fails if queueing a job notifies anyone.
-- depends: 0018_protocol_reference

SET LOCAL lock_timeout = '5s';
ALTER TABLE procrastinate_jobs DISABLE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1;
