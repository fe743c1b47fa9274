using System.Runtime.CompilerServices;
using System.Diagnostics;

namespace R1Sharp.Kernels;

/// <summary>
/// Worker threads for the decode kernels (<see cref="Gemv"/>, <see cref="DecodeAttention"/>). A decode step calls
/// them about a hundred times with short gaps of other operators in between; Parallel.For's pool threads fall asleep
/// in those gaps and wake late, so the caller did most of each short, memory-bound product alone. These workers spin
/// for a short while after each job before they block, so the next product of the same step finds them awake
/// (bench/README.md, "Kernel choices").
/// </summary>
public static class KernelThreads
{
    /// <summary>How long an idle worker keeps polling for the next job before it blocks.</summary>
    static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    sealed class Job(Action<int> body, int count, bool spinAfter)
    {
        public readonly Action<int> Body = body;
        public readonly int Count = count;
        public readonly bool SpinAfter = spinAfter;
        public int Next, Done;
        public Exception? Error;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
        public void Work()
        {
            int i;
            while ((i = Interlocked.Increment(ref Next) - 1) < Count)
            {
                try { Body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref Error, e, null); }
                Interlocked.Increment(ref Done);
            }
        }
    }

    static readonly object gate = new(), callLock = new();
    static Job? current;
    static int sleepers, workers;

    /// <summary>Runs body(0..count-1) on the caller and up to threads-1 workers; returns when all are done.
    /// spinAfter: whether the workers then poll for the next job for a while (decode: the next call comes within
    /// microseconds) or block at once (training kernels: the next call comes after milliseconds of libtorch
    /// operators, whose OpenMP threads need the cores meanwhile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public static void For(int count, int threads, Action<int> body, bool spinAfter = true)
    {
        if (threads <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        // One job at a time: a second caller (another thread decoding) waits rather than sharing the workers.
        lock (callLock)
        {
            while (workers < threads - 1) StartWorker();
            var job = new Job(body, count, spinAfter);
            Interlocked.Exchange(ref current, job); // a full fence: the read of sleepers below cannot move above it
            if (Volatile.Read(ref sleepers) > 0) lock (gate) Monitor.PulseAll(gate);
            job.Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Done) < count) spin.SpinOnce(sleep1Threshold: -1);
            if (job.Error is { } e) throw new AggregateException(e);
        }
    }

    static void StartWorker()
    {
        workers++;
        new Thread(WorkerLoop) { IsBackground = true, Name = "R1Sharp kernel worker" }.Start();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    static void WorkerLoop()
    {
        Job? last = null;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            Job? job;
            while ((job = Volatile.Read(ref current)) == last)
            {
                if (last is { SpinAfter: false } || Stopwatch.GetTimestamp() - start > SpinTicks)
                {
                    lock (gate)
                    {
                        Interlocked.Increment(ref sleepers);
                        while ((job = Volatile.Read(ref current)) == last) Monitor.Wait(gate);
                        Interlocked.Decrement(ref sleepers);
                    }
                    break;
                }
                // Past the first 50 us, poll with sched_yield: libtorch's OpenMP workers (passive) woken by an
                // operator between two kernel calls then get this core at once instead of waiting out a time slice.
                if (Stopwatch.GetTimestamp() - start > SpinTicks / 10) Thread.Yield(); else Thread.SpinWait(30);
            }
            last = job;
            job!.Work();
        }
    }
}
