-- A fetch takes the oldest jobs of its stones that nobody holds. Through one index of every
-- job (`jobs_stone`), it stepped over each job held by a worker, reading its row to see the
-- lease: a pool of workers with a thousand jobs in hand made every fetch read a thousand rows
-- it could not take (1.2 ms a fetch, a tenth of the server's time handing out jobs), and ten
-- thousand long jobs in hand would make it ten times that. Jobs nobody holds are indexed by
-- stone and age, and held jobs by the end of their lease, so a fetch reads the free jobs it
-- takes and the held ones whose lease has ended, and no other.
DROP INDEX jobs_stone;
CREATE INDEX jobs_free ON jobs (stone, created_at) WHERE owner IS NULL;
CREATE INDEX jobs_held ON jobs (locked_until) WHERE owner IS NOT NULL;
