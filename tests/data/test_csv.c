/*
 * tests/data/test_csv.c — numeric CSV: values and labels read back (label column first,
 * middle or counted from the end; header skipped; CRLF, blank lines and spaces accepted),
 * num_classes; and the bad inputs: ragged rows, non-numeric / empty / non-finite fields,
 * labels that are negative, fractional or too large, empty files, a header with no rows,
 * a missing label column, a missing file and a folder in its place.
 */
#include "data_fixtures.h"

static ig_dataset *csv_from(const char *dir, const char *text, int label_column, bool header, char *path) {
    write_bytes(path_in(path, dir, "d.csv"), text, strlen(text));
    return ig_dataset_csv(path, label_column, header);
}

Test(data, csv_round_trip_label_last) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_dataset *d = csv_from(dir,
                             "f1,f2,f3,label\r\n"
                             "1.5, -2 ,3e2,0\r\n"
                             "\r\n"
                             "0,0.25,\t7,4\n"
                             "   \n"
                             "-1,1,1,2", /* no final newline */
                             -1, true, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 3);
    int64_t shape[3];
    cr_assert_eq(ig_dataset_item_shape(d, shape), 1);
    cr_assert_eq(shape[0], 3);
    cr_assert_eq(ig_dataset_num_classes(d), 5);
    const float want[3][3] = {{1.5f, -2.0f, 300.0f}, {0.0f, 0.25f, 7.0f}, {-1.0f, 1.0f, 1.0f}};
    const int64_t labels[3] = {0, 4, 2};
    for (int i = 0; i < 3; i++) {
        float x[3];
        int64_t y;
        cr_assert_eq(ig_dataset_get(d, i, x, &y), IG_OK);
        cr_assert_eq(y, labels[i]);
        for (int k = 0; k < 3; k++) cr_assert_eq(x[k], want[i][k]);
    }
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, csv_label_column_first_and_middle) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_dataset *d = csv_from(dir, "1,10,20\n0,30,40\n", 0, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x[2];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(y == 1 && x[0] == 10.0f && x[1] == 20.0f);
    ig_dataset_free(d);
    d = csv_from(dir, "10,1,20\n30,3.0,40\n", 1, false, p); /* "3.0" is an integer */
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_get(d, 1, x, &y), IG_OK);
    cr_assert(y == 3 && x[0] == 30.0f && x[1] == 40.0f);
    cr_assert_eq(ig_dataset_num_classes(d), 4);
    ig_dataset_free(d);
    d = csv_from(dir, "10,1,20\n", -2, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(y == 1 && x[1] == 20.0f);
    ig_dataset_free(d);
    rm_tree(dir);
}

static void expect_csv_fails(const char *text, int label_column, bool header, const char *problem) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_clear_error();
    cr_assert_null(csv_from(dir, text, label_column, header, p), "accepted: %s", text);
    cr_assert_neq(ig_last_status(), IG_OK);
    expect_error("ig_dataset_csv", p, problem);
    rm_tree(dir);
}

Test(data, csv_ragged_rows) {
    expect_csv_fails("1,2,0\n3,4\n", -1, false, "line 2: ragged row of 2 fields, expected 3 (as line 1)");
    expect_csv_fails("h\n1,2,0\n\n3,4,5,0\n", -1, true, "line 4: ragged row of 4 fields, expected 3 (as line 2)");
}

Test(data, csv_non_numeric_fields) {
    expect_csv_fails("1,2,0\n3,abc,1\n", -1, false, "line 2, field 2: \"abc\" is not a number");
    expect_csv_fails("1,,0\n", -1, false, "line 1, field 2: \"\" is not a number");
    expect_csv_fails("1,2x,0\n", -1, false, "\"2x\" is not a number");
    expect_csv_fails("\"1\",2,0\n", -1, false, "field 1: \"\"1\"\" is not a number");
    expect_csv_fails("nan,2,0\n", -1, false, "\"nan\" is not a number");
    expect_csv_fails("1,inf,0\n", -1, false, "\"inf\" is not a number");
    expect_csv_fails("1,1e999,0\n", -1, false, "\"1e999\" is not a number");
    expect_csv_fails("1,2,zero\n", -1, false, "field 3: \"zero\" is not a number");
}

Test(data, csv_labels_out_of_range) {
    expect_csv_fails("1,2,-1\n", -1, false, "line 1: label -1 out of range");
    expect_csv_fails("1,2,0\n1,2,2.5\n", -1, false, "line 2: label 2.5 out of range");
    expect_csv_fails("1,2,65536\n", -1, false, "label 65536 out of range (a class in 0..65535)");
}

Test(data, csv_empty_and_columns) {
    expect_csv_fails("", -1, false, "no data rows");
    expect_csv_fails("\n\n  \n", -1, false, "no data rows");
    expect_csv_fails("a,b,label\n", -1, true, "no data rows after the header");
    expect_csv_fails("1,2,0\n", 3, false, "label column 3 does not exist (line 1 has 3 fields)");
    expect_csv_fails("1,2,0\n", -4, false, "label column -4 does not exist");
    expect_csv_fails("0\n1\n", 0, false, "only the label column");
}

Test(data, csv_unreadable) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    cr_assert_null(ig_dataset_csv(path_in(p, dir, "none.csv"), -1, false));
    expect_error("ig_dataset_csv", p, "cannot open");
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    mkdir_p(p);
    cr_assert_null(ig_dataset_csv(p, -1, false));
    expect_error(p, "not a regular file");
    ig_clear_error();
    cr_assert_null(ig_dataset_csv(NULL, -1, false));
    expect_error("ig_dataset_csv", "path");
    rm_tree(dir);
}
