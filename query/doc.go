// Package query is ctid's query engine (查询器): registered query definitions stored per
// tenant, compiled to parameterised SQL that cannot be injected, run as the tenant's reader
// role in a READ ONLY transaction, scoped by the viewer's role, paged, totalled and exported.
//
// Safety rests on three rules, each enforced in one place:
//   - identifiers (tables, columns) come only from the Catalogue, which is read from the
//     tenant schema's pg_catalog and limited to the tables on the tenant's allow-list, and are
//     quoted with pgx.Identifier;
//   - every value a user gives (condition values, page tokens, SQL-text parameters) is a
//     bound $n parameter;
//   - operators, aggregates, time buckets and formats come from fixed tables in this package.
//
// SQL-text queries (for power users) are not parsed for safety: they rely on the database —
// they run wrapped as a subquery in a READ ONLY transaction on a connection that logs in as
// the tenant's reader role, which can read only its own schema, with statement_timeout.
package query
