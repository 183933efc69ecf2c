// The rows of a sweep chunk and the measures of parts as Messages (distributed.hpp): a rank
// that measured a chunk sends its rows to rank 0, which writes them. Every value goes as its
// exact bytes, so that rank 0 writes what it would have computed itself.
#pragma once

#include <vector>

#include "linkstyle/distributed.hpp"
#include "linkstyle/part_measures.hpp"
#include "linkstyle/results_database.hpp"

namespace linkstyle {

void put_part_measures(Message& message, const std::vector<std::vector<PartMeasures>>& images);
std::vector<std::vector<PartMeasures>> take_part_measures(Message& message);

void put_unit_rows(Message& message, const UnitChunkRows& rows);
// The rows keep their parts in `parts`, which must outlive them.
UnitChunkRows take_unit_rows(Message& message, std::vector<std::vector<PartMeasures>>& parts);

void put_null_rows(Message& message, const NullChunkRows& rows);
NullChunkRows take_null_rows(Message& message);

}  // namespace linkstyle
