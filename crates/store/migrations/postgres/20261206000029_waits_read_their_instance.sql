-- A wait's model and tenant are its instance's: read through the instance, not kept on the
-- record a second time.
DROP VIEW event_subscriptions;
ALTER TABLE tasks DROP COLUMN wait_model;
ALTER TABLE tasks DROP COLUMN wait_tenant;
CREATE VIEW event_subscriptions AS
    SELECT record_id, '' AS instance_id, model_id, starts, tenant_id, element, kind, name, correlation_key, created_at
    FROM start_subscriptions
    UNION ALL
    SELECT t.id, t.instance_id, i.model_id, NULL, d.tenant_id, t.element, t.wait_kind, t.wait_name, t.wait_key, t.wait_since
    FROM tasks t JOIN instances i ON i.id = t.instance_id JOIN models m ON m.id = i.model_id
    JOIN deployments d ON d.id = m.deployment_id
    WHERE t.wait_kind IS NOT NULL;
