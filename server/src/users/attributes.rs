//! User attributes from the optional SQL queries: one row of columns, each column an
//! attribute named after it, and rows of name and value pairs for multi-valued ones.

use cas_core::validation::Attributes;

use super::sql::{ColumnValue, DatabaseError, Field, UserDatabase};

/// The attribute queries of the configuration; either may be off.
#[derive(Debug, Clone, Default)]
pub struct AttributeQueries {
    /// Each column of each row adds a value to the attribute named after the column.
    pub columns: Option<String>,
    /// Each row adds its second column's value to the attribute named by its first.
    pub pairs: Option<String>,
}

impl AttributeQueries {
    /// Runs the configured queries for `user`, the stored user name, and merges their
    /// results. NULL values are skipped, and so are values that cannot be read as text,
    /// with a warning that names the column.
    pub async fn fetch(
        &self,
        database: &UserDatabase,
        user: &str,
    ) -> Result<Attributes, DatabaseError> {
        let mut attributes = Attributes::new();

        if let Some(query) = &self.columns {
            for row in database.all_fields(query, user).await? {
                add_columns(&mut attributes, row);
            }
        }
        if let Some(query) = &self.pairs {
            for row in database.all_fields(query, user).await? {
                add_pair(&mut attributes, row);
            }
        }
        Ok(attributes)
    }
}

/// Adds every non-NULL cell of a row of the columns shape.
fn add_columns(attributes: &mut Attributes, row: Vec<Field>) {
    for field in row {
        if let Some(value) = readable_value(&field, "attribute_query") {
            attributes.entry(field.column).or_default().push(value);
        }
    }
}

/// Adds the value of a row of the pairs shape: the first column is the name, the second
/// the value. Rows with another number of columns or an unusable name are skipped.
fn add_pair(attributes: &mut Attributes, row: Vec<Field>) {
    let columns = row.len();
    let Ok([name, value]) = <[Field; 2]>::try_from(row) else {
        tracing::warn!(
            columns,
            "attribute_pairs_query must return two columns, name and value; row skipped"
        );
        return;
    };

    let name = match name.value {
        ColumnValue::Text(name) if !name.is_empty() => name,
        ColumnValue::Null => return,
        _ => {
            tracing::warn!(column = %name.column, r#type = %name.type_name, "attribute_pairs_query returned an empty or unreadable attribute name; row skipped");
            return;
        }
    };
    if let Some(value) = readable_value(&value, "attribute_pairs_query") {
        attributes.entry(name).or_default().push(value);
    }
}

fn readable_value(field: &Field, setting: &'static str) -> Option<String> {
    match &field.value {
        ColumnValue::Text(value) => Some(value.clone()),
        ColumnValue::Null => None,
        ColumnValue::Undecodable => {
            tracing::warn!(setting, column = %field.column, r#type = %field.type_name, "attribute value is not text, UTF-8 bytes or a number; value skipped (cast it to a string in the query)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(column: &str, value: ColumnValue) -> Field {
        Field {
            column: column.into(),
            type_name: "VARCHAR".into(),
            value,
        }
    }

    fn text(value: &str) -> ColumnValue {
        ColumnValue::Text(value.into())
    }

    #[test]
    fn columns_skip_null_and_unreadable() {
        let mut attributes = Attributes::new();
        add_columns(
            &mut attributes,
            vec![
                field("mail", text("a@example.org")),
                field("phone", ColumnValue::Null),
                field("born", ColumnValue::Undecodable),
            ],
        );

        assert_eq!(attributes.get("mail"), Some(&vec!["a@example.org".into()]));
        assert!(!attributes.contains_key("phone"));
        assert!(!attributes.contains_key("born"));
    }

    #[test]
    fn pairs_collect_several_values() {
        let mut attributes = Attributes::new();
        for (name, value) in [("memberOf", "staff"), ("memberOf", "dev")] {
            add_pair(
                &mut attributes,
                vec![field("name", text(name)), field("value", text(value))],
            );
        }

        assert_eq!(
            attributes.get("memberOf"),
            Some(&vec!["staff".into(), "dev".into()])
        );
    }

    #[test]
    fn pairs_skip_bad_rows() {
        let mut attributes = Attributes::new();
        add_pair(&mut attributes, vec![field("name", text("only"))]);
        add_pair(
            &mut attributes,
            vec![field("name", text("")), field("value", text("x"))],
        );
        add_pair(
            &mut attributes,
            vec![field("name", ColumnValue::Null), field("value", text("x"))],
        );
        add_pair(
            &mut attributes,
            vec![
                field("name", text("mail")),
                field("value", ColumnValue::Null),
            ],
        );

        assert!(attributes.is_empty(), "{attributes:?}");
    }
}
