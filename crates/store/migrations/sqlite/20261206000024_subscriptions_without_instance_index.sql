-- An instance's waits are found through its task records (each wait is one: the catch event,
-- receive task or boundary event that waits), as its jobs are, instead of through an index of
-- their own: a delivered message deletes its wait from two b-trees, not three, each at a page
-- of its own.
DROP INDEX event_subscriptions_instance;
