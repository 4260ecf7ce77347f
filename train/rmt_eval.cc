// rmt-eval: accuracy of an RMT model on the memory tasks against the number
// of segments it reads, the counterpart of the RMT report's Figure 5
// (1-15 segments) and Figure 1 (out to 4096 segments).
//
//   rmt-eval --model models/rmt-babi --segments 1,2,4,8,32,128,512,4096
//            --table eval.md --plot eval
//
// Prints a markdown table (one row per task, one column per segment count,
// accuracy in percent) and draws PNG plots with gnuplot. A prediction counts
// when its label's name (the model's config.json) is the answer, so a model
// without an "unknown" label (one trained before that task) scores 0 on it.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/guarded_main.h"
#include "model/host_allocator.h"
#include "model/model_directory.h"
#include "model/status_macros.h"
#include "model/torch_interop.h"
#include "tools/program_flags.h"
#include "train/evaluation.h"
#include "train/noise_text.h"
#include "train/tasks.h"

ABSL_FLAG(std::string, model, "models/rmt-babi", "Model directory.");
ABSL_FLAG(std::string, noise_file, "",
          "Noise text file; empty: Debian's fortunes (as in training).");
ABSL_FLAG(std::string, segments,
          "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,32,128,512,4096",
          "Segment counts to evaluate, comma-separated.");
ABSL_FLAG(int, samples, 500, "Samples per point up to 128 segments.");
ABSL_FLAG(int, samples_long, 100, "Samples per point beyond 128 segments.");
ABSL_FLAG(uint32_t, seed, 1, "Seed of the test samples.");
ABSL_FLAG(std::string, tasks, "memorize,detect,reasoning,unknown",
          "Tasks to evaluate.");
ABSL_FLAG(int, batch_size, 100, "Samples per forward pass.");
ABSL_FLAG(std::string, table, "", "Also write the markdown table here.");
ABSL_FLAG(std::string, plot, "",
          "PNG path prefix: writes PREFIX-short.png (Figure 5) and "
          "PREFIX-long.png (Figure 1) with gnuplot.");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda, cuda:N or auto.");
ABSL_FLAG(std::string, dtype, "float32",
          "Compute precision: float32, bfloat16 or float16 (weights are "
          "converted at load; memories keep the config's memory_dtype).");
ABSL_FLAG(int, threads, 0, "Intra-op threads (0: one per hardware thread).");

namespace rmt {
namespace {

using Results = std::map<Task, std::map<int, double>>;

std::string Table(const Results& results, const std::vector<int>& segments) {
  std::string table = "| task |";
  std::string rule = "|---|";
  for (int s : segments) {
    absl::StrAppend(&table, " ", s, " |");
    rule += "---:|";
  }
  table += "\n" + rule + "\n";
  for (const auto& [task, row] : results) {
    absl::StrAppend(&table, "| ", TaskName(task), " |");
    for (int s : segments) {
      auto it = row.find(s);
      absl::StrAppend(&table,
                      it == row.end()
                          ? std::string(" |")
                          : absl::StrFormat(" %.1f |", 100 * it->second));
    }
    table += "\n";
  }
  return table;
}

absl::Status Plot(const Results& results, const std::string& prefix) {
  const std::string data = prefix + ".dat";
  {
    std::ofstream out(data);
    for (const auto& [task, row] : results) {
      out << "# " << TaskName(task) << "\n";
      for (const auto& [segments, accuracy] : row) {
        out << segments << " " << 100 * accuracy << "\n";
      }
      out << "\n\n";
    }
  }
  std::string plots;
  int index = 0;
  for (const auto& [task, row] : results) {
    absl::StrAppend(&plots, index ? ", " : "", "'", data, "' index ", index,
                    " with linespoints lw 2 title '", TaskName(task), "'");
    ++index;
  }
  const std::string script = prefix + ".gnuplot";
  {
    std::ofstream out(script);
    out << "set terminal pngcairo size 900,540 noenhanced\n"
        << "set ylabel 'accuracy, %'\nset yrange [0:105]\nset grid\n"
        << "set key bottom left\n"
        << "set output '" << prefix << "-short.png'\n"
        << "set title 'Accuracy against evaluated segments'\n"
        << "set xlabel 'segments read'\nset xrange [0.5:15.5]\n"
        << "plot " << plots << "\n"
        << "set output '" << prefix << "-long.png'\n"
        << "set title 'Extrapolation to long inputs'\n"
        << "set logscale x 2\nset xrange [0.8:*]\n"
        << "plot " << plots << "\n";
  }
  const std::string command = absl::StrCat("gnuplot '", script, "'");
  if (std::system(command.c_str()) != 0) {
    return absl::UnavailableError(
        "gnuplot failed (is Debian's gnuplot-nox installed?)");
  }
  return absl::OkStatus();
}

absl::Status Run() {
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  ASSIGN_OR_RETURN(torch::Device device,
                   ParseDevice(absl::GetFlag(FLAGS_device)));
  LoadOptions load;
  load.device = device;
  ASSIGN_OR_RETURN(load.dtype, ParseComputeDType(absl::GetFlag(FLAGS_dtype)));
  ASSIGN_OR_RETURN(auto bundle,
                   LoadModelDirectory(absl::GetFlag(FLAGS_model), load));
  ASSIGN_OR_RETURN(NoiseText noise,
                   LoadNoiseFileOrDefault(absl::GetFlag(FLAGS_noise_file)));
  ASSIGN_OR_RETURN(TaskGenerator generator,
                   TaskGenerator::Create(bundle->tokenizer, noise,
                                         bundle->config.rmt.segment_size));
  std::vector<int> segments;
  for (absl::string_view s :
       absl::StrSplit(absl::GetFlag(FLAGS_segments), ',')) {
    int value = 0;
    if (!absl::SimpleAtoi(s, &value) || value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad segment count \"", s, "\""));
    }
    segments.push_back(value);
  }
  ASSIGN_OR_RETURN(std::vector<Task> tasks,
                   ParseTaskList(absl::GetFlag(FLAGS_tasks)));
  const std::vector<std::string>& labels = bundle->config.labels;
  if (std::find(tasks.begin(), tasks.end(), Task::kUnknown) != tasks.end() &&
      std::find(labels.begin(), labels.end(), kUnknownAnswer) == labels.end()) {
    std::cerr << "rmt-eval: " << absl::GetFlag(FLAGS_model) << " has no \""
              << kUnknownAnswer
              << "\" label; it scores 0 on the unknown task\n";
  }
  Results results;
  for (int s : segments) {
    for (Task task : tasks) {
      AccuracyOptions options;
      options.samples = s > 128 ? absl::GetFlag(FLAGS_samples_long)
                                : absl::GetFlag(FLAGS_samples);
      options.batch_size = absl::GetFlag(FLAGS_batch_size);
      options.seed = absl::GetFlag(FLAGS_seed);
      const auto start = std::chrono::steady_clock::now();
      results[task][s] = Accuracy(*bundle->model, generator, task, s, options);
      std::cerr << absl::StrFormat(
          "%-18s %5d segments (%7d tokens): %5.1f%% of %d  [%.1f s]\n",
          TaskName(task), s, s * bundle->config.rmt.segment_size,
          100 * results[task][s], options.samples,
          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                        start)
              .count());
    }
  }
  const std::string table = Table(results, segments);
  std::cout << table;
  if (!absl::GetFlag(FLAGS_table).empty()) {
    std::ofstream(absl::GetFlag(FLAGS_table)) << table;
  }
  if (!absl::GetFlag(FLAGS_plot).empty()) {
    RETURN_IF_ERROR(Plot(results, absl::GetFlag(FLAGS_plot)));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace rmt

int main(int argc, char** argv) {
  return rmt::GuardedMain("rmt-eval", [&] {
    rmt::ParseProgramFlags(argc, argv,
                           "Evaluates an RMT model's accuracy per task and "
                           "length.\n  rmt-eval --model DIR ...");
    rmt::KeepTensorBuffersMapped();
    absl::Status status = rmt::Run();
    if (!status.ok()) {
      std::cerr << "rmt-eval: " << status << "\n";
      return 1;
    }
    return 0;
  });
}
