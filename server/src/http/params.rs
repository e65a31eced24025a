//! Query strings and form bodies, parsed strictly by [`cas_core::form`].

pub use cas_core::form::{Params, ParamsError};
