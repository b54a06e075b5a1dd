//! People and groups: who signs in, and whom a task's candidate groups mean.

use crate::{Page, Result};

/// A user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    /// The login name.
    pub id: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// How the user is shown.
    pub display_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// The password's hash (PHC string); none for a user who cannot sign in.
    pub password_hash: Option<String>,
    /// The tenant they belong to; none: no tenant (they see every tenant's work).
    pub tenant_id: Option<String>,
}

/// A group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its type (`assignment`, `security-role`, …).
    pub kind: Option<String>,
}

/// An application of the bk-sops API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppRow {
    /// The Argon2 hash of its secret.
    pub secret_hash: String,
    /// The businesses (`bk_biz_id`s) it may reach; none: every business.
    pub businesses: Option<Vec<String>>,
}

/// A bearer token issued to a user, known by its hash only.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    /// The hex SHA-256 of the token.
    pub hash: String,
    /// Whom it authenticates.
    pub user_id: String,
    /// When it was issued (ms since the epoch).
    pub created_at: i64,
    /// When it stops working (ms since the epoch).
    pub expires_at: i64,
}

/// A column of the users or groups table that lists filter and sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityColumn {
    /// The id (both tables).
    #[default]
    Id,
    /// A user's first name.
    FirstName,
    /// A user's last name.
    LastName,
    /// A user's e-mail.
    Email,
    /// A group's name.
    Name,
    /// A group's type.
    Type,
}

impl IdentityColumn {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::Email => "email",
            Self::Name => "name",
            Self::Type => "type",
        }
    }
}

/// Filters and order of the user and group lists.
#[derive(Debug, Clone, Default)]
pub struct IdentityQuery {
    /// Columns equal to values.
    pub equal: Vec<(IdentityColumn, String)>,
    /// Columns like SQL `LIKE` patterns.
    pub like: Vec<(IdentityColumn, String)>,
    /// Users who are members of this group / groups this user is a member of.
    pub member: Option<String>,
    /// The order: by this column (then id), descending when true.
    pub order: (IdentityColumn, bool),
}

/// Durable users, groups and memberships.
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync {
    /// A user by id.
    async fn user(&self, id: &str) -> Result<Option<UserRow>>;
    /// Users by id, with the total count.
    async fn list_users(&self, query: &IdentityQuery, page: Page) -> Result<(Vec<UserRow>, u64)>;
    /// Creates a user; false when the id is taken.
    async fn create_user(&self, user: &UserRow) -> Result<bool>;
    /// Replaces a user's fields; false when there is no such user.
    async fn update_user(&self, user: &UserRow) -> Result<bool>;
    /// Removes a user and their memberships; false when there is no such user.
    async fn delete_user(&self, id: &str) -> Result<bool>;

    /// A group by id.
    async fn group(&self, id: &str) -> Result<Option<GroupRow>>;
    /// Groups by id, with the total count.
    async fn list_groups(&self, query: &IdentityQuery, page: Page) -> Result<(Vec<GroupRow>, u64)>;
    /// Creates a group; false when the id is taken.
    async fn create_group(&self, group: &GroupRow) -> Result<bool>;
    /// Replaces a group's fields; false when there is no such group.
    async fn update_group(&self, group: &GroupRow) -> Result<bool>;
    /// Removes a group and its memberships; false when there is no such group.
    async fn delete_group(&self, id: &str) -> Result<bool>;

    /// Makes a user a member of a group; false when already one.
    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<bool>;
    /// Ends a membership; false when there was none.
    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<bool>;

    /// Records an issued token.
    async fn create_token(&self, token: &TokenRow) -> Result<()>;
    /// The token with this hash, if it was issued and not revoked (expired ones included).
    async fn token(&self, hash: &str) -> Result<Option<TokenRow>>;
    /// Revokes a token; false when there was none.
    async fn delete_token(&self, hash: &str) -> Result<bool>;
    /// Revokes every token of a user (their password changed); answers how many there were.
    async fn delete_user_tokens(&self, user_id: &str) -> Result<u64>;

    /// Registers an application of the bk-sops API with the hash of its secret and the
    /// businesses it may reach (none: every business); with `replace`, an application of
    /// that code gets the new secret and businesses, else it stays and the answer is false.
    async fn put_app(&self, code: &str, app: &AppRow, now: i64, replace: bool) -> Result<bool>;
    /// An application of the bk-sops API.
    async fn app(&self, code: &str) -> Result<Option<AppRow>>;
}

/// The SQL implementation, written once for both backends (see `sql_store`).
macro_rules! identity_store {
    ($store:ty, $db:ty) => {
        mod identity_impl {
            use super::*;
            use sqlx::{QueryBuilder, Row};
            use $crate::{AppRow, GroupRow, IdentityQuery, IdentityStore, Page, Result, TokenRow, UserRow};

            type DbRow = <$db as sqlx::Database>::Row;

            fn user_row(r: &DbRow) -> Result<UserRow> {
                Ok(UserRow {
                    id: r.try_get("id")?,
                    first_name: r.try_get("first_name")?,
                    last_name: r.try_get("last_name")?,
                    display_name: r.try_get("display_name")?,
                    email: r.try_get("email")?,
                    password_hash: r.try_get("password_hash")?,
                    tenant_id: r.try_get("tenant_id")?,
                })
            }

            fn group_row(r: &DbRow) -> Result<GroupRow> {
                Ok(GroupRow { id: r.try_get("id")?, name: r.try_get("name")?, kind: r.try_get("type")? })
            }

            /// `membership` is the subquery a `member` filter matches ids against.
            fn push_filter(q: &mut QueryBuilder<$db>, f: &IdentityQuery, membership: &str) {
                q.push(" WHERE 1 = 1");
                for (column, value) in &f.equal {
                    q.push(format!(" AND {} = ", column.sql())).push_bind(value.clone());
                }
                for (column, pattern) in &f.like {
                    q.push(format!(" AND {} LIKE ", column.sql()))
                        .push_bind(crate::like_pattern(pattern))
                        .push(crate::LIKE_ESCAPE);
                }
                if let Some(member) = &f.member {
                    q.push(format!(" AND id IN ({membership}")).push_bind(member.clone()).push(")");
                }
            }

            async fn list<T>(
                pool: &sqlx::Pool<$db>,
                table: &str,
                f: &IdentityQuery,
                page: Page,
                membership: &str,
                row: fn(&DbRow) -> Result<T>,
            ) -> Result<(Vec<T>, u64)> {
                let mut count = QueryBuilder::<$db>::new(format!("SELECT COUNT(*) FROM {table}"));
                push_filter(&mut count, f, membership);
                let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
                let mut q = QueryBuilder::<$db>::new(format!("SELECT * FROM {table}"));
                push_filter(&mut q, f, membership);
                let (column, desc) = f.order;
                let direction = if desc { "DESC" } else { "ASC" };
                q.push(format!(" ORDER BY {} {direction}, id {direction} LIMIT ", column.sql())).push_bind(page.limit.min(i64::MAX as u64) as i64);
                q.push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
                let rows = q.build().fetch_all(pool).await?;
                Ok((rows.iter().map(row).collect::<Result<_>>()?, total as u64))
            }

            /// Deletes the row `id` of `table` and, first, the rows of `dependents` (table, column)
            /// that point at it.
            async fn delete_with_dependents(
                store: &$store,
                table: &str,
                dependents: &[(&str, &str)],
                id: &str,
            ) -> Result<bool> {
                let _writing = store.writing().await;
                let mut tx = store.pool.begin().await?;
                for (dependent, column) in dependents {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {dependent} WHERE {column} = $1")))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let removed =
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE id = $1"))).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(removed.rows_affected() > 0)
            }

            #[async_trait::async_trait]
            impl IdentityStore for $store {
                async fn user(&self, id: &str) -> Result<Option<UserRow>> {
                    let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(user_row).transpose()
                }

                async fn list_users(&self, query: &IdentityQuery, page: Page) -> Result<(Vec<UserRow>, u64)> {
                    let membership = "SELECT user_id FROM memberships WHERE group_id = ";
                    list(&self.pool, "users", query, page, membership, user_row).await
                }

                async fn create_user(&self, u: &UserRow) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "INSERT INTO users (id, first_name, last_name, display_name, email, password_hash, tenant_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&u.id)
                    .bind(&u.first_name)
                    .bind(&u.last_name)
                    .bind(&u.display_name)
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(&u.tenant_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn update_user(&self, u: &UserRow) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE users SET first_name = $1, last_name = $2, display_name = $3, email = $4,
                         password_hash = $5, tenant_id = $7 WHERE id = $6",
                    )
                    .bind(&u.first_name)
                    .bind(&u.last_name)
                    .bind(&u.display_name)
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(&u.id)
                    .bind(&u.tenant_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_user(&self, id: &str) -> Result<bool> {
                    delete_with_dependents(self, "users", &[("memberships", "user_id"), ("api_tokens", "user_id")], id).await
                }

                async fn group(&self, id: &str) -> Result<Option<GroupRow>> {
                    let row = sqlx::query("SELECT * FROM groups WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(group_row).transpose()
                }

                async fn list_groups(&self, query: &IdentityQuery, page: Page) -> Result<(Vec<GroupRow>, u64)> {
                    let membership = "SELECT group_id FROM memberships WHERE user_id = ";
                    list(&self.pool, "groups", query, page, membership, group_row).await
                }

                async fn create_group(&self, g: &GroupRow) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("INSERT INTO groups (id, name, type) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                        .bind(&g.id)
                        .bind(&g.name)
                        .bind(&g.kind)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn update_group(&self, g: &GroupRow) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("UPDATE groups SET name = $1, type = $2 WHERE id = $3")
                        .bind(&g.name)
                        .bind(&g.kind)
                        .bind(&g.id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_group(&self, id: &str) -> Result<bool> {
                    delete_with_dependents(self, "groups", &[("memberships", "group_id")], id).await
                }

                async fn add_member(&self, group_id: &str, user_id: &str) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "INSERT INTO memberships (group_id, user_id) VALUES ($1, $2) ON CONFLICT (group_id, user_id) DO NOTHING",
                    )
                    .bind(group_id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("DELETE FROM memberships WHERE group_id = $1 AND user_id = $2")
                        .bind(group_id)
                        .bind(user_id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn create_token(&self, t: &TokenRow) -> Result<()> {
                    let _writing = self.writing().await;
                    sqlx::query("INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                        .bind(&t.hash)
                        .bind(&t.user_id)
                        .bind(t.created_at)
                        .bind(t.expires_at)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn token(&self, hash: &str) -> Result<Option<TokenRow>> {
                    let row = sqlx::query("SELECT * FROM api_tokens WHERE token_hash = $1").bind(hash).fetch_optional(&self.pool).await?;
                    row.map(|r| {
                        Ok(TokenRow {
                            hash: r.try_get("token_hash")?,
                            user_id: r.try_get("user_id")?,
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                        })
                    })
                    .transpose()
                }

                async fn put_app(&self, code: &str, app: &AppRow, now: i64, replace: bool) -> Result<bool> {
                    let _writing = self.writing().await;
                    let on_conflict = if replace {
                        " ON CONFLICT (code) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, businesses = EXCLUDED.businesses"
                    } else {
                        " ON CONFLICT (code) DO NOTHING"
                    };
                    let sql = format!("INSERT INTO bk_apps (code, secret_hash, created_at, businesses) VALUES ($1, $2, $3, $4){on_conflict}");
                    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(code)
                        .bind(&app.secret_hash)
                        .bind(now)
                        .bind(app.businesses.as_ref().map(|b| b.join(",")))
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn app(&self, code: &str) -> Result<Option<AppRow>> {
                    let row = sqlx::query("SELECT secret_hash, businesses FROM bk_apps WHERE code = $1")
                        .bind(code)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|r| {
                        let businesses: Option<String> = r.try_get("businesses")?;
                        Ok(AppRow {
                            secret_hash: r.try_get("secret_hash")?,
                            businesses: businesses.map(|b| b.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
                        })
                    })
                    .transpose()
                }

                async fn delete_token(&self, hash: &str) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1").bind(hash).execute(&self.pool).await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
                    Ok(done.rows_affected())
                }
            }
        }
    };
}
pub(crate) use identity_store;
