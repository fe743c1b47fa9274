// Writes tests/R1Sharp.Tests/Fixtures/parquet/hyparquet.parquet with hyparquet-writer (npm), an implementation
// independent of Parquet.Net: 5 rows in row groups of 2, Snappy-compressed, a string and an int32 answer column.
import { parquetWriteFile } from 'hyparquet-writer'
parquetWriteFile({
  filename: process.argv[2],
  columnData: [
    { name: 'problem', data: ['What is 1+1?', 'Solve $x^2=4$ for x > 0.', 'π ≈ ? (two decimals)', 'Größte Zahl: 7, 3, 9?', '答案是多少？ 6×7'], type: 'STRING' },
    { name: 'solution', data: ['2', '2', '3.14', '9', '42'], type: 'STRING' },
    { name: 'int_answer', data: [2, 2, 3, 9, 42], type: 'INT32' },
  ],
  rowGroupSize: 2,
  createdBy: 'hyparquet-writer 0.17.0',
})
