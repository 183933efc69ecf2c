// The results database's connection and the sweep run's fixed rows: its identity, parts,
// samples and completion.
#include "linkstyle/results_database.hpp"

#include <torch/torch.h>

#include "linkstyle/sqlite_database.hpp"
#include "results/results_statements.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

std::set<int64_t> first_column_ids(Database& db, const std::string& sql) {
  std::set<int64_t> ids;
  Database::Statement query(db, sql);
  while (query.step()) ids.insert(query.column_int(0));
  return ids;
}

ResultsDatabase::ResultsDatabase(const fs::path& file, Mode mode)
    : database_(std::make_unique<Database>(
          file, mode == Mode::create_or_open ? Database::Mode::create_or_open : Database::Mode::open_existing)) {
  if (mode == Mode::read_only)
    database_->execute("PRAGMA query_only = ON;");  // every write fails, the file stays as it is
  else
    check_or_create_schema(*database_, mode);
}

ResultsDatabase::~ResultsDatabase() = default;
ResultsDatabase::ResultsDatabase(ResultsDatabase&&) noexcept = default;
ResultsDatabase& ResultsDatabase::operator=(ResultsDatabase&&) noexcept = default;

const fs::path& ResultsDatabase::file() const { return database_->file(); }

std::optional<std::string> ResultsDatabase::run_identity() {
  return database_->query_text("SELECT value FROM meta WHERE key = 'run'");
}

void ResultsDatabase::start_run(const std::string& identity, const std::vector<std::string>& part_names,
                                const torch::Tensor& generator_classes, const torch::Tensor& classifier_classes) {
  Database& db = *database_;
  db.in_transaction([&] {
    Database::Statement meta(db, "INSERT INTO meta (key, value) VALUES (?, ?)");
    meta.bind(1, std::string("run")).bind(2, identity);
    meta.run();
    Database::Statement part(db, "INSERT INTO parts (part, name) VALUES (?, ?)");
    for (size_t p = 0; p < part_names.size(); ++p) {
      part.bind(1, int64_t(p)).bind(2, part_names[p]);
      part.run();
    }
    Database::Statement sample(db, "INSERT INTO samples (sample, generator_class, classifier_class) VALUES (?, ?, ?)");
    const auto generator_class = generator_classes.to(torch::kLong).contiguous();
    const auto classifier_class = classifier_classes.to(torch::kLong).contiguous();
    for (int64_t i = 0; i < generator_class.size(0); ++i) {
      sample.bind(1, i).bind(2, generator_class[i].item<int64_t>()).bind(3, classifier_class[i].item<int64_t>());
      sample.run();
    }
  });
}

void ResultsDatabase::mark_complete(const std::string& part_source) {
  Database::Statement meta(*database_,
                           "INSERT OR REPLACE INTO meta (key, value) VALUES ('complete', '1'), "
                           "('part_source', ?)");
  meta.bind(1, part_source);
  meta.run();
  database_->checkpoint();
}

bool ResultsDatabase::is_complete() {
  return database_->query_text("SELECT value FROM meta WHERE key = 'complete'").value_or("0") == "1";
}

bool ResultsDatabase::has_table(const std::string& name) { return database_->has_table(name); }

std::vector<std::string> ResultsDatabase::part_names() {
  std::vector<std::string> names;
  Database::Statement q(*database_, "SELECT name FROM parts ORDER BY part");
  while (q.step()) names.push_back(q.column_text(0));
  return names;
}

std::map<int64_t, int64_t> ResultsDatabase::sample_generator_classes() {
  std::map<int64_t, int64_t> classes;
  Database::Statement q(*database_, "SELECT sample, generator_class FROM samples");
  while (q.step()) classes[q.column_int(0)] = q.column_int(1);
  return classes;
}

}  // namespace linkstyle
