-- The items of a large instance (open records, tokens, scopes, …), each stored apart from the
-- instance's core document so that a commit writes only the items that changed.
CREATE TABLE instance_parts (
    instance_id TEXT NOT NULL,
    part        TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (instance_id, part)
);
