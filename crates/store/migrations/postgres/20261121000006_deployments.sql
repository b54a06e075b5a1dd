-- Deployments as Flowable REST shows them: a name, a category and a tenant over the models
-- they brought, each model knowing the resource (file) it came from.
CREATE TABLE deployments (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    category    TEXT,
    tenant_id   TEXT,
    deployed_at BIGINT NOT NULL
);
INSERT INTO deployments (id, deployed_at) SELECT deployment_id, MIN(created_at) FROM models GROUP BY deployment_id;
ALTER TABLE models ADD COLUMN resource TEXT;
UPDATE models SET resource = key || '.bpmn20.xml';

-- Who started an instance, and the business key it was started with.
ALTER TABLE instances ADD COLUMN business_key TEXT;
ALTER TABLE instances ADD COLUMN start_user TEXT;
CREATE INDEX instances_business_key ON instances (business_key);
