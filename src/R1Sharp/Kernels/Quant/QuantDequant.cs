using R1Sharp.IO;

namespace R1Sharp.Kernels;

/// <summary>Quantized rows → float32, the values of ggml's dequantize_row_* (prefill tiles, tests).</summary>
public static unsafe class QuantDequant
{
    public static void Rows(QuantMatrix m, int first, int count, float* dst)
    {
        for (int i = 0; i < count; i++)
            GgufQuant.Dequantize(m.Type, new ReadOnlySpan<byte>(m.Row(first + i), (int)m.RowBytes), new Span<float>(dst + (long)i * m.Cols, m.Cols));
    }
}
