// The report's and the explorer's static assets, kept in the program so that an installed
// linkstyle writes a whole report and serves the explorer from anywhere. The files are
// src/report/assets/*; the build embeds their bytes (cmake/embed_files.cmake) into a generated
// source that defines these functions.
#pragma once

#include <string_view>

namespace linkstyle::report {

std::string_view report_stylesheet();  // assets/report.css (also the explorer's)
std::string_view gallery_script();     // assets/gallery.js: the units gallery's filters and sorting
std::string_view explorer_page();      // the explorer's page (served at /)
std::string_view explorer_script();    // its script (served at /explorer.js)

}  // namespace linkstyle::report
