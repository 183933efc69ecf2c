// results/results_statements.hpp
//
// WHAT THIS REPRESENTS
//   What the parts of ResultsDatabase (results_database.hpp) share: the schema texts, the schema
//   check, and small helpers that read columns of a statement's row.
// REQUIRES
//   The column helpers: a statement on a row (step() returned true) and a column it selects.
// ENSURES
//   number_or_nan gives NaN for NULL, text_or_empty "" for NULL; nothing here changes a row.
#pragma once

#include <cmath>
#include <cstdint>
#include <set>
#include <string>

#include "linkstyle/results_database.hpp"
#include "linkstyle/sqlite_database.hpp"

namespace linkstyle {

// The tables of `linkstyle probe` and of `linkstyle counterfactual`, made when those run.
extern const char* const kProbeSchema;
extern const char* const kCounterfactualSchema;

// A new file gets the schema; an existing one must be linkstyle's, of this version (version 2 is
// brought up to it).
void check_or_create_schema(Database& db, ResultsDatabase::Mode mode);

inline double number_or_nan(const Database::Statement& row, int column) {
  return row.is_null(column) ? double(NAN) : row.column_double(column);
}

inline std::string text_or_empty(const Database::Statement& row, int column) {
  return row.is_null(column) ? std::string() : row.column_text(column);
}

// The first column of every row of `sql`, as integers.
std::set<int64_t> first_column_ids(Database& db, const std::string& sql);

}  // namespace linkstyle
