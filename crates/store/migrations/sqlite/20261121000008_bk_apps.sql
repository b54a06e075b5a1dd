-- Applications allowed to call the bk-sops API (`bk_app_code` + `bk_app_secret`); only an
-- Argon2 hash of each secret is kept.
CREATE TABLE bk_apps (
    code        TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
