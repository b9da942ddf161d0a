// A read-only memory mapping of a whole file. Model weights are used directly
// from such mappings (no copies); a worker touches only the pages of the
// tensors it runs, so only those become resident.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace unicorn {

class MappedFile {
 public:
  // Maps `path` read-only. Errors name the path and the errno.
  static StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

  // Advises the kernel that [offset, offset+len) will be read soon.
  void WillNeed(size_t offset, size_t len) const;
  // Advises the kernel that [offset, offset+len) is done with: its pages
  // leave this process's resident set (read-only mapping: nothing is lost).
  void DontNeed(size_t offset, size_t len) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace unicorn
