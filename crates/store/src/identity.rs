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

/// Filters of the user and group lists; `*_like` take SQL `LIKE` patterns.
#[derive(Debug, Clone, Default)]
pub struct IdentityQuery {
    /// Id equal to.
    pub id: Option<String>,
    /// Name (a user's first name, a group's name) like.
    pub name_like: Option<String>,
    /// Users who are members of this group / groups this user is a member of.
    pub member: Option<String>,
    /// A user's e-mail like.
    pub email_like: Option<String>,
    /// A group's type equal to.
    pub kind: Option<String>,
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
}

/// The SQL implementation, written once for both backends (see `sql_store`).
macro_rules! identity_store {
    ($store:ty, $db:ty) => {
        mod identity_impl {
            use super::*;
            use sqlx::{QueryBuilder, Row};
            use $crate::{GroupRow, IdentityQuery, IdentityStore, Page, Result, UserRow};

            type DbRow = <$db as sqlx::Database>::Row;

            fn user_row(r: &DbRow) -> Result<UserRow> {
                Ok(UserRow {
                    id: r.try_get("id")?,
                    first_name: r.try_get("first_name")?,
                    last_name: r.try_get("last_name")?,
                    display_name: r.try_get("display_name")?,
                    email: r.try_get("email")?,
                    password_hash: r.try_get("password_hash")?,
                })
            }

            fn group_row(r: &DbRow) -> Result<GroupRow> {
                Ok(GroupRow { id: r.try_get("id")?, name: r.try_get("name")?, kind: r.try_get("type")? })
            }

            /// `membership` is the subquery a `member` filter matches ids against.
            fn push_filter(q: &mut QueryBuilder<$db>, f: &IdentityQuery, name: &str, membership: &str) {
                q.push(" WHERE 1 = 1");
                if let Some(id) = &f.id {
                    q.push(" AND id = ").push_bind(id.clone());
                }
                if let Some(like) = &f.name_like {
                    q.push(format!(" AND {name} LIKE ")).push_bind(like.clone());
                }
                if let Some(like) = &f.email_like {
                    q.push(" AND email LIKE ").push_bind(like.clone());
                }
                if let Some(kind) = &f.kind {
                    q.push(" AND type = ").push_bind(kind.clone());
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
                name: &str,
                membership: &str,
                row: fn(&DbRow) -> Result<T>,
            ) -> Result<(Vec<T>, u64)> {
                let mut count = QueryBuilder::<$db>::new(format!("SELECT COUNT(*) FROM {table}"));
                push_filter(&mut count, f, name, membership);
                let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
                let mut q = QueryBuilder::<$db>::new(format!("SELECT * FROM {table}"));
                push_filter(&mut q, f, name, membership);
                q.push(" ORDER BY id LIMIT ").push_bind(page.limit.min(i64::MAX as u64) as i64);
                q.push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
                let rows = q.build().fetch_all(pool).await?;
                Ok((rows.iter().map(row).collect::<Result<_>>()?, total as u64))
            }

            async fn delete_with_memberships(
                store: &$store,
                table: &str,
                column: &str,
                id: &str,
            ) -> Result<bool> {
                let _writing = store.writing().await;
                let mut tx = store.pool.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM memberships WHERE {column} = $1"))).bind(id).execute(&mut *tx).await?;
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
                    list(&self.pool, "users", query, page, "first_name", membership, user_row).await
                }

                async fn create_user(&self, u: &UserRow) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "INSERT INTO users (id, first_name, last_name, display_name, email, password_hash)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&u.id)
                    .bind(&u.first_name)
                    .bind(&u.last_name)
                    .bind(&u.display_name)
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn update_user(&self, u: &UserRow) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE users SET first_name = $1, last_name = $2, display_name = $3, email = $4,
                         password_hash = $5 WHERE id = $6",
                    )
                    .bind(&u.first_name)
                    .bind(&u.last_name)
                    .bind(&u.display_name)
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(&u.id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_user(&self, id: &str) -> Result<bool> {
                    delete_with_memberships(self, "users", "user_id", id).await
                }

                async fn group(&self, id: &str) -> Result<Option<GroupRow>> {
                    let row = sqlx::query("SELECT * FROM groups WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(group_row).transpose()
                }

                async fn list_groups(&self, query: &IdentityQuery, page: Page) -> Result<(Vec<GroupRow>, u64)> {
                    let membership = "SELECT group_id FROM memberships WHERE user_id = ";
                    list(&self.pool, "groups", query, page, "name", membership, group_row).await
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
                    delete_with_memberships(self, "groups", "group_id", id).await
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
            }
        }
    };
}
pub(crate) use identity_store;
