-- The element an instance ended at: the end event that completed it, or the element that
-- failed it (Flowable's endActivityId).
ALTER TABLE instances ADD COLUMN end_element TEXT;
