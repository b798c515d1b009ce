"""Human review: sample graded results, export a sheet reviewers fill in, import it back (docs/review.md)."""

from qa.review.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from qa.review.export import Exported, export_review
from qa.review.importer import Imported, Problem, Review, import_reviews
from qa.review.mask import mask_record, mask_text, safe_cell
from qa.review.records import Duplicate, UniqueResults, read_results, read_unique
from qa.review.sample import Sample, SampleSpec, sample
from qa.review.summary import agreement_report

__all__ = ["Duplicate", "Exported", "Imported", "Problem", "Review", "Sample", "SampleSpec", "UniqueResults",
           "agreement_report", "cohen_kappa", "export_review", "fleiss_kappa", "import_reviews", "krippendorff_alpha",
           "mask_record", "mask_text", "read_results", "read_unique", "safe_cell", "sample"]
