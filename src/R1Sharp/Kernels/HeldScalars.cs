using TorchSharp;

namespace R1Sharp.Kernels;

/// <summary>
/// Constant Scalars held in static fields, so libtorch never reads one the finalizer has freed. A C# number where
/// TorchSharp wants a Scalar (<c>t.mul(0.5)</c>, <c>t * 2</c>, <c>masked_fill(m, 0)</c>, and <c>a + b</c>, whose
/// alpha 1 TorchSharp converts itself) becomes a temporary Scalar that nothing references once its handle is read; a
/// collection triggered by another thread during the native call can then free it first (see <see cref="Ops.Add"/>).
/// Values known only at run time are held with <c>using var s = value.ToScalar();</c> across the call instead. Each
/// constant keeps the C# type the code used before (int 0 and double 0.0 are different c10::Scalars), so results stay
/// bit-identical. Never `using` or Dispose one: it is shared by every caller. The test ScalarTemporariesTests finds
/// any Scalar left unheld in src/, and any shared one disposed.
/// </summary>
public static class HeldScalars
{
    /// <summary>The int 0.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>The int 1 (alpha of an add).</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>The double 0.0.</summary>
    public static readonly Scalar ZeroDouble = 0.0.ToScalar();

    /// <summary>The double 1.0.</summary>
    public static readonly Scalar OneDouble = 1.0.ToScalar();

    /// <summary>The int 2 (the exponent of a square: TorchSharp's square() is pow(2)).</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>The float −∞ (masked logits).</summary>
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();
}
