//! Diagram geometry kept from BPMN DI, so that a run can later be drawn as it was modelled.

use serde::Serialize;

/// A point in diagram coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
}

/// A rectangle in diagram coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// Where a node is drawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shape {
    /// The id of the element it draws.
    pub element: String,
    /// Its rectangle.
    pub bounds: Bounds,
}

/// How a flow is drawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    /// The id of the element it draws.
    pub element: String,
    /// The polyline.
    pub waypoints: Vec<Point>,
}

/// All shapes and edges of a model; empty when the source had no diagram.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diagram {
    /// Node rectangles.
    pub shapes: Vec<Shape>,
    /// Flow polylines.
    pub edges: Vec<Edge>,
}
