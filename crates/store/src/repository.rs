//! Queries of deployments and models (Flowable's repository lists), filtered, sorted and
//! paged by the database, so that a page reads one page of rows.

/// A text column's filters: equal to, and `LIKE` (`%` any run, `_` any one character).
#[derive(Debug, Clone, Default)]
pub struct TextFilter {
    /// Equal to this.
    pub equals: Option<String>,
    /// Matching this `LIKE` pattern.
    pub like: Option<String>,
}

/// A tenant's filters: equal to, `LIKE`, or none at all.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// Of this tenant, or matching this pattern.
    pub tenant: TextFilter,
    /// Only those of no tenant.
    pub without: bool,
}

/// How deployments are ordered (ties by id, the same way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeploymentOrder {
    /// By id.
    #[default]
    Id,
    /// By name (no name first).
    Name,
    /// By when they were deployed.
    DeployTime,
    /// By tenant (no tenant first).
    TenantId,
}

/// Filters of the deployment list; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct DeploymentQuery {
    /// By name.
    pub name: TextFilter,
    /// Of this category.
    pub category: Option<String>,
    /// Not of this category (those of none included).
    pub category_not: Option<String>,
    /// By tenant.
    pub tenant: TenantFilter,
    /// The order.
    pub order: DeploymentOrder,
    /// Largest first.
    pub descending: bool,
}

/// How models are ordered (ties by id, the same way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModelOrder {
    /// By name (no name first).
    #[default]
    Name,
    /// By id.
    Id,
    /// By process key.
    Key,
    /// By deployment.
    DeploymentId,
    /// By version.
    Version,
    /// By their deployment's tenant (no tenant first).
    TenantId,
}

/// Filters of the model list (Flowable's process definitions); every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    /// Of this version.
    pub version: Option<i64>,
    /// By name.
    pub name: TextFilter,
    /// By process key.
    pub key: TextFilter,
    /// By the name of the file it came in.
    pub resource_name: TextFilter,
    /// Of this deployment.
    pub deployment_id: Option<String>,
    /// By their deployment's tenant.
    pub tenant: TenantFilter,
    /// Only the newest version of each key.
    pub latest: bool,
    /// The order.
    pub order: ModelOrder,
    /// Largest first.
    pub descending: bool,
}

impl DeploymentOrder {
    pub(crate) fn column(self) -> &'static str {
        match self {
            DeploymentOrder::Id => "d.id",
            DeploymentOrder::Name => "COALESCE(d.name, '')",
            DeploymentOrder::DeployTime => "d.deployed_at",
            DeploymentOrder::TenantId => "COALESCE(d.tenant_id, '')",
        }
    }
}

impl ModelOrder {
    pub(crate) fn column(self) -> &'static str {
        match self {
            ModelOrder::Name => "COALESCE(m.name, '')",
            ModelOrder::Id => "m.id",
            ModelOrder::Key => "m.key",
            ModelOrder::DeploymentId => "m.deployment_id",
            ModelOrder::Version => "m.version",
            ModelOrder::TenantId => "COALESCE(d.tenant_id, '')",
        }
    }
}
