#include "model/memory_pool.h"

#include <gtest/gtest.h>

namespace rmt {
namespace {

constexpr int64_t kM = 3;
constexpr int64_t kD = 4;

torch::Tensor Initial() {
  return torch::arange(kM * kD).view({kM, kD}).to(torch::kFloat);
}
torch::Tensor Filled(float value) { return torch::full({kM, kD}, value); }

std::unique_ptr<MemoryPool> MakePool(int64_t device, int64_t host = 0) {
  MemoryPoolOptions options;
  options.device_capacity = device;
  options.host_capacity = host;
  auto pool = MemoryPool::Create(options, Initial(), torch::kCPU);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return std::move(*pool);
}

// Writes `value` into a slot through the batch path.
void Store(MemoryPool& pool, SlotId slot, float value) {
  ASSERT_TRUE(pool.Gather({slot}).ok());
  ASSERT_TRUE(pool.Scatter({slot}, Filled(value).unsqueeze(0)).ok());
  pool.Unpin({slot});
}

TEST(MemoryPoolTest, NewSlotsHoldTheInitialMemory) {
  auto pool = MakePool(4);
  SlotId a = *pool->Allocate();
  Store(*pool, a, 5);
  ASSERT_TRUE(pool->Free(a).ok());
  SlotId b = *pool->Allocate();  // reuses a's row
  EXPECT_NE(a, b);
  EXPECT_TRUE(torch::equal(*pool->Read(b), Initial()));
}

TEST(MemoryPoolTest, GatherAndScatterAddressTheRightSlots) {
  auto pool = MakePool(8);
  std::vector<SlotId> slots;
  for (int i = 0; i < 5; ++i) slots.push_back(*pool->Allocate());
  for (int i = 0; i < 5; ++i) Store(*pool, slots[i], float(i));
  auto gathered = pool->Gather({slots[4], slots[1], slots[1]});
  ASSERT_TRUE(gathered.ok());
  EXPECT_TRUE(torch::equal((*gathered)[0], Filled(4)));
  EXPECT_TRUE(torch::equal((*gathered)[1], Filled(1)));
  EXPECT_TRUE(torch::equal((*gathered)[2], Filled(1)));
  pool->Unpin({slots[4], slots[1], slots[1]});
  EXPECT_TRUE(torch::equal(*pool->Read(slots[3]), Filled(3)));
}

// Slots on consecutive rows, in order, are read in place (a view) and
// written with one copy; out of order they are gathered. Both must address
// the same memories.
TEST(MemoryPoolTest, ConsecutiveRowsAreReadAndWrittenInPlace) {
  auto pool = MakePool(8);
  std::vector<SlotId> slots;
  for (int i = 0; i < 4; ++i) slots.push_back(*pool->Allocate());
  for (int i = 0; i < 4; ++i) Store(*pool, slots[i], float(i));
  const std::vector<SlotId> in_order = {slots[1], slots[2], slots[3]};
  auto gathered = pool->Gather(in_order);
  ASSERT_TRUE(gathered.ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(torch::equal((*gathered)[i], Filled(float(i + 1))));
  }
  ASSERT_TRUE(pool->Scatter(in_order,
                            torch::stack({Filled(10), Filled(11), Filled(12)}))
                  .ok());
  pool->Unpin(in_order);
  const std::vector<SlotId> reversed = {slots[3], slots[2]};
  gathered = pool->Gather(reversed);
  ASSERT_TRUE(gathered.ok());
  EXPECT_TRUE(torch::equal((*gathered)[0], Filled(12)));
  EXPECT_TRUE(torch::equal((*gathered)[1], Filled(11)));
  pool->Unpin(reversed);
  EXPECT_TRUE(torch::equal(*pool->Read(slots[0]), Filled(0)));
  EXPECT_TRUE(torch::equal(*pool->Read(slots[1]), Filled(10)));
}

TEST(MemoryPoolTest, FullPoolIsResourceExhausted) {
  auto pool = MakePool(2);
  ASSERT_TRUE(pool->Allocate().ok());
  ASSERT_TRUE(pool->Allocate().ok());
  EXPECT_EQ(pool->Allocate().status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(MemoryPoolTest, EvictsLeastRecentlyUsedToHostAndRestoresIt) {
  auto pool = MakePool(2, 2);
  SlotId a = *pool->Allocate();
  SlotId b = *pool->Allocate();
  Store(*pool, a, 1);
  Store(*pool, b, 2);
  Store(*pool, a, 3);  // b is now the least recently used
  SlotId c = *pool->Allocate();
  EXPECT_TRUE(pool->IsResident(a));
  EXPECT_FALSE(pool->IsResident(b));
  EXPECT_TRUE(pool->IsResident(c));
  EXPECT_EQ(pool->Stats().offloaded, 1);
  EXPECT_TRUE(torch::equal(*pool->Read(b), Filled(2)));
  // Using b brings it back (evicting a, now the oldest) with its data intact.
  auto gathered = pool->Gather({b});
  ASSERT_TRUE(gathered.ok());
  EXPECT_TRUE(torch::equal((*gathered)[0], Filled(2)));
  pool->Unpin({b});
  EXPECT_FALSE(pool->IsResident(a));
  EXPECT_TRUE(torch::equal(*pool->Read(a), Filled(3)));
  EXPECT_EQ(pool->Stats().restores, 1);
}

TEST(MemoryPoolTest, PinnedSlotsAreNeverEvicted) {
  auto pool = MakePool(2, 4);
  SlotId a = *pool->Allocate();
  SlotId b = *pool->Allocate();
  SlotId c = *pool->Allocate();  // evicts a
  ASSERT_FALSE(pool->IsResident(a));
  // a, b and c cannot all be on a 2-row device at once.
  EXPECT_EQ(pool->Gather({a, b, c}).status().code(),
            absl::StatusCode::kResourceExhausted);
  // The failed gather released its pins: a slot can still be freed.
  EXPECT_TRUE(pool->Free(b).ok());
  ASSERT_TRUE(pool->Gather({c}).ok());
  EXPECT_EQ(pool->Offload(c).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool->Free(c).code(), absl::StatusCode::kFailedPrecondition);
  pool->Unpin({c});
  EXPECT_TRUE(pool->Offload(c).ok());
}

TEST(MemoryPoolTest, FullWhenDeviceAndHostAreFull) {
  auto pool = MakePool(1, 1);
  ASSERT_TRUE(pool->Allocate().ok());
  ASSERT_TRUE(pool->Allocate().ok());
  EXPECT_EQ(pool->Allocate().status().code(),
            absl::StatusCode::kResourceExhausted);
}

// Host memory full and every device row taken: a parked memory still comes
// back by trading places with an idle resident one (a hardening defect: it
// used to fail with RESOURCE_EXHAUSTED and lose the session's segment).
TEST(MemoryPoolTest, FullPoolSwapsAParkedMemoryBack) {
  auto pool = MakePool(/*device=*/2, /*host=*/2);
  std::vector<SlotId> slots;
  for (int i = 0; i < 4; ++i) {
    slots.push_back(*pool->Allocate());
    Store(*pool, slots.back(), static_cast<float>(i + 1));
  }
  EXPECT_FALSE(pool->Allocate().ok());  // device and host are full
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      auto gathered = pool->Gather({slots[i]});
      ASSERT_TRUE(gathered.ok())
          << "round " << round << " slot " << i << ": " << gathered.status();
      EXPECT_TRUE(
          torch::equal((*gathered)[0], Filled(static_cast<float>(i + 1))));
      pool->Unpin({slots[i]});
    }
  }
  MemoryPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.resident, 2);
  EXPECT_EQ(stats.offloaded, 2);
  // Two pinned rows leave nothing to trade with.
  ASSERT_TRUE(pool->Gather({slots[2], slots[3]}).ok());
  EXPECT_EQ(pool->Gather({slots[0]}).status().code(),
            absl::StatusCode::kResourceExhausted);
  pool->Unpin({slots[2], slots[3]});
}

TEST(MemoryPoolTest, WriteAndReadWhereverTheSlotLives) {
  auto pool = MakePool(2, 2);
  SlotId a = *pool->Allocate();
  ASSERT_TRUE(pool->Write(a, Filled(7)).ok());
  EXPECT_TRUE(torch::equal(*pool->Read(a), Filled(7)));
  ASSERT_TRUE(pool->Offload(a).ok());
  ASSERT_TRUE(pool->Write(a, Filled(8)).ok());
  EXPECT_TRUE(torch::equal(*pool->Read(a), Filled(8)));
  EXPECT_EQ(pool->Write(a, torch::zeros({2, 2})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MemoryPoolTest, UnknownSlotsAreNotFound) {
  auto pool = MakePool(2);
  EXPECT_EQ(pool->Read(99).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool->Free(99).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool->Gather({99}).status().code(), absl::StatusCode::kNotFound);
  SlotId a = *pool->Allocate();
  EXPECT_EQ(pool->Scatter({a}, Filled(1).unsqueeze(0)).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MemoryPoolTest, StatsCountBytes) {
  auto pool = MakePool(4, 4);
  SlotId a = *pool->Allocate();
  pool->Allocate().IgnoreError();
  ASSERT_TRUE(pool->Offload(a).ok());
  MemoryPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.slots, 2);
  EXPECT_EQ(stats.resident, 1);
  EXPECT_EQ(stats.offloaded, 1);
  EXPECT_EQ(stats.bytes_per_slot, kM * kD * 4);
  EXPECT_EQ(stats.device_bytes, 4 * kM * kD * 4);
  EXPECT_EQ(stats.host_bytes, kM * kD * 4);
}

}  // namespace
}  // namespace rmt
