#include "errors.h"

#include <iostream>

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/train.h"
#include "ablate/results/files.h"
#include "ablate/results/import.h"
#include "ablate/results/query.h"
#include "ablate/results/report.h"
#include "ablate/results/store.h"
#include "ablate/runner/parse.h"
#include "ablate/runner/slurm.h"
#include "cli.h"

namespace ablate::cli {

int guarded(const std::string& command, const std::function<int()>& body) {
  try {
    return body();
  } catch (const runner::ConfigError& e) {
    for (const auto& p : e.problems()) std::cerr << "error: " << p.text() << "\n";
    return kBadInput;
  } catch (const experiments::DataError& e) {
    std::cerr << "data error: " << e.what() << "\n";
    return kBadInput;
  } catch (const experiments::RunError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::QueryError& e) {
    std::cerr << "ablate query: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::ImportError& e) {
    std::cerr << "ablate import: " << e.what() << "\n";
    return kBadInput;
  } catch (const runner::SlurmError& e) {
    std::cerr << "ablate " << command << ": slurm: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::ReportError& e) {
    std::cerr << "ablate report: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::NotAStoreError& e) {
    std::cerr << "ablate " << command << ": --db: " << e.what() << "\n";
    return kBadInput;
  } catch (const results::DiskError& e) {
    // A failure while running, not bad input: what was written before stays whole.
    std::cerr << "ablate " << command << ": " << e.what() << "\n";
    return kFailure;
  } catch (const results::StoreError& e) {
    std::cerr << "store error: " << e.what() << "\n";
    return kFailure;
  } catch (const po::error& e) {
    std::cerr << "ablate " << command << ": " << e.what() << " (ablate help " << command
              << " lists the options)\n";
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "ablate " << command << " failed: " << e.what() << "\n";
    return kFailure;
  }
}

}  // namespace ablate::cli
