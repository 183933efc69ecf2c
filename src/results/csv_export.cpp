// The results' tables and views as CSV files (`linkstyle export`).
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "results/results_statements.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

int64_t ResultsDatabase::export_table(const std::string& table, const fs::path& output) {
  return export_csv(*database_, table, output);
}

nlohmann::json export_results_tables(const fs::path& database, const std::vector<std::string>& tables,
                                     const fs::path& folder) {
  ResultsDatabase results(database, ResultsDatabase::Mode::open_existing);
  for (const auto& table : tables) {
    if (table.empty() || table.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
      throw Error("export", "'" + table + "' is not a table name");
    if (!results.has_table(table)) throw Error(results.file(), "has no table '" + table + "'");
  }
  ensure_writable_directory(folder);
  nlohmann::json written = nlohmann::json::object();
  for (const auto& table : tables) {
    const fs::path file = folder / (table + ".csv");
    written[table] = {{"file", file.string()}, {"rows", results.export_table(table, file)}};
  }
  return written;
}

}  // namespace linkstyle
