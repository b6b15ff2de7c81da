//! Addresses as a review shows them: `j***@example.com`. A pull request comment is read by
//! more people than the audience file is, and is copied into mail notifications; the
//! first letter and the domain say enough to tell rows apart.

/// `address` with all of its local part but the first character hidden.
pub fn mask(address: &str) -> String {
    match address.trim().rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every occurrence of `address` (as written, or in lower case) masked.
pub fn mask_in(text: &str, address: &str) -> String {
    let address = address.trim();
    if address.is_empty() {
        return text.to_owned();
    }
    let masked = mask(address);
    let once = text.replace(address, &masked);
    let lower = address.to_lowercase();
    if lower == address {
        once
    } else {
        once.replace(&lower, &masked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_letter_and_the_domain_remain() {
        assert_eq!(mask("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask("j@example.com"), "j***@example.com");
        assert_eq!(mask("not an address"), "***");
        assert_eq!(
            mask_in("Dear Ann@Example.com (ann@example.com)", "Ann@Example.com"),
            "Dear A***@Example.com (A***@Example.com)"
        );
    }
}
